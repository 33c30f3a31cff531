"""Finds secret values in logs, files and HTTP answers, also URL-encoded, base64 or hex.

A leak is rarely the bare value: a password travels URL-encoded inside a DSN or an RTSP URL,
base64-encoded inside a Basic `Authorization` header, hex-encoded in a debug dump. The
scanner derives those forms from each secret and reports every occurrence, with the secret
masked in the report so a failing test does not leak it a second time.

    scanner = SecretScanner({"mqtt password": "p4ss..."})
    leaks = scanner.scan_text(log_text, where="stderr") + scanner.scan_paths([log_dir])
    assert not leaks, format_leaks(leaks)
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 8
"""Shorter values would match innocent text; test secrets should be long and random."""

_MASK = "<SECRET>"
_CONTEXT = 30


@dataclass(frozen=True)
class Leak:
    """One occurrence of a secret (in one of its forms) in a scanned text."""

    secret: str
    form: str
    where: str
    line: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.secret} ({self.form}) in {self.excerpt!r}"


def secret_forms(value: str) -> dict[str, str]:
    """Every encoded form of `value` worth looking for, by form name (duplicates dropped)."""
    raw = value.encode()
    forms = {
        "plain": value,
        "url-encoded": quote(value, safe=""),
        "form-encoded": quote_plus(value, safe=""),
        "hex": raw.hex(),
    }
    for offset in range(3):
        forms[f"base64@{offset}"] = _base64_core(raw, offset, base64.b64encode)
        forms[f"base64url@{offset}"] = _base64_core(raw, offset, base64.urlsafe_b64encode)
    unique: dict[str, str] = {}
    for form, text in forms.items():
        if text and text not in unique.values():
            unique[form] = text
    return unique


def _base64_core(raw: bytes, offset: int, encode: Callable[[bytes], bytes]) -> str:
    # Inside a longer base64 text (a Basic header's `user:password`) the secret starts at any
    # byte offset mod 3; only the characters made of its own bits alone are stable.
    encoded = encode(b"\0" * offset + raw).decode()
    start = math.ceil(offset * 8 / 6)
    end = (offset + len(raw)) * 8 // 6
    return encoded[start:end]


class SecretScanner:
    """Looks for a set of named secrets in texts and files."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        short = [name for name, value in secrets.items() if len(value) < MIN_SECRET_LENGTH]
        if short:
            raise ValueError(f"secrets shorter than {MIN_SECRET_LENGTH} chars: {short}")
        self._forms = [
            (name, form, text)
            for name, value in secrets.items()
            for form, text in secret_forms(value).items()
        ]

    def scan_text(self, text: str, where: str) -> list[Leak]:
        """Every occurrence of every form of every secret in `text`."""
        leaks: list[Leak] = []
        for name, form, needle in self._forms:
            start = text.find(needle)
            while start != -1:
                leaks.append(self._leak(text, start, needle, name, form, where))
                start = text.find(needle, start + 1)
        return leaks

    def scan_bytes(self, data: bytes, where: str) -> list[Leak]:
        return self.scan_text(data.decode("utf-8", errors="replace"), where)

    def scan_paths(self, paths: Iterable[Path]) -> list[Leak]:
        """Scan files, and every file under directories."""
        leaks: list[Leak] = []
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                leaks += self.scan_bytes(file.read_bytes(), str(file))
        return leaks

    def _leak(self, text: str, start: int, needle: str, name: str, form: str, where: str) -> Leak:
        line_start = text.rfind("\n", 0, start) + 1
        before = text[max(line_start, start - _CONTEXT) : start]
        line_end = text.find("\n", start)
        end = start + len(needle)
        after = text[end : min(end + _CONTEXT, line_end if line_end != -1 else len(text))]
        line = text.count("\n", 0, start) + 1
        return Leak(name, form, where, line, before + _MASK + after)


def format_leaks(leaks: Iterable[Leak]) -> str:
    """A readable list of leaks for an assertion message (secrets masked)."""
    return "secrets leaked:\n" + "\n".join(f"  {leak}" for leak in leaks)
