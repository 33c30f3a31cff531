"""Logging set-up: stdlib logging, structured extras, text or JSON lines, secrets redacted.

Redaction happens in the handlers' formatter, so no record can leave with a secret: values of
the secret environment variables named in the config (`models/env.py` registers them) are
replaced by `***`, and so is the `user:password@` part of any URL (RTSP cameras).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from homesec.models.enums import LogFormat

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")
# Where a value lists several URLs (Apprise's), each starts after whitespace, ',' or ';'.
_NEXT_URL = re.compile(r"[\s,;]+(?=[a-zA-Z][a-zA-Z0-9+.-]*://)")
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
_secrets: set[str] = set()
# One pass over the text, longest secrets first: a secret that holds a shorter one
# ("hunter2-token" and "hunter2") is replaced whole, never leaving a part of itself behind.
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Never let this value appear in a log line, nor any URL it lists, nor such a URL's
    password, as written and %-decoded (tools print either). Short values would redact too
    much and are left out."""
    global _secrets_pattern
    parts = {value, *_urls(value)}
    parts |= {form for url in parts for form in _passwords(url)}
    new = {part for part in parts if len(part) >= 4} - _secrets
    if new:
        _secrets.update(new)
        longest_first = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(secret) for secret in longest_first))


def _urls(value: str) -> list[str]:
    return [part for part in _NEXT_URL.split(value.strip()) if "://" in part]


def _passwords(url: str) -> set[str]:
    try:
        password = urlsplit(url).password
    except ValueError:  # not a URL after all (an unclosed IPv6 bracket...)
        return set()
    return {password, unquote(password)} if password else set()


def redact(text: str) -> str:
    """Remove URL credentials and registered secret values from a string."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    if _secrets_pattern is not None:
        text = _secrets_pattern.sub("***", text)
    return text


def redact_json(value: Any) -> str:
    """`value` as JSON text, each string redacted before it is encoded.

    Redacting the encoded text would miss a secret holding a quote, a backslash or a
    non-ASCII character: JSON escapes those, so the secret no longer appears as written.
    """
    return json.dumps(_redacted(value), default=lambda other: redact(str(other)))


def _redacted(value: Any) -> Any:
    match value:
        case str():
            return redact(value)
        case dict():
            return {key: _redacted(item) for key, item in value.items()}
        case list() | tuple():
            return [_redacted(item) for item in value]
    return value


def structured_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra={...}` fields of a record."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = structured_extras(record)
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(extras.items()))
        return redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **structured_extras(record),
        }
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return redact_json(payload)


def configure_logging(level: str, log_format: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == LogFormat.JSON else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless asked for.
    noisy_loggers = (
        "aiosqlite",
        "asyncio",
        "uvicorn.access",
        "alembic",
        "dropbox",
        "botocore",
        "boto3",
        "pyftpdlib",
        "apprise",
        "httpx",
        "httpx2",  # the openai SDK's own copy: one line per VLM request
    )
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
