"""The secret scanner finds a secret in every form a leak takes, and only there."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from tests.security.secret_scan import SecretScanner, format_leaks

PASSWORD = "p@ss w/rd:Zq7!xK"
TOKEN = "tok_9f8e7d6c5b4a"


@pytest.mark.parametrize(
    ("text", "form"),
    [
        (f"connecting with {PASSWORD} now", "plain"),
        (f"rtsp://cam:{quote(PASSWORD, safe='')}@10.0.0.5/stream", "url-encoded"),
        (urlencode({"user": "cam", "password": PASSWORD}), "form-encoded"),
        (json.dumps({"dump": PASSWORD.encode().hex()}), "hex"),
    ],
    ids=["plain", "url-encoded", "form-encoded", "hex"],
)
def test_a_secret_is_found_plain_url_encoded_or_hex(text: str, form: str) -> None:
    # Given a scanner for one password
    scanner = SecretScanner({"mqtt password": PASSWORD})

    # When a text holding it in some form is scanned
    leaks = scanner.scan_text(text, where="log")

    # Then the leak is reported in that form, and the report masks the secret
    assert [leak.form for leak in leaks] == [form]
    assert all(leak.secret == "mqtt password" for leak in leaks)
    assert PASSWORD not in format_leaks(leaks)


@pytest.mark.parametrize("user", ["", "a", "ab", "admin"])
def test_a_secret_inside_a_basic_auth_header_is_found_at_any_alignment(user: str) -> None:
    # Given a Basic Authorization header built from `user:password` (any user name length)
    header = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    scanner = SecretScanner({"camera password": PASSWORD})

    # When the header line is scanned
    leaks = scanner.scan_text(f"GET / HTTP/1.1\nAuthorization: {header}\n", where="capture")

    # Then the base64 form is found on line 2
    assert [(leak.line, leak.form.startswith("base64")) for leak in leaks] == [(2, True)]


def test_every_occurrence_in_every_file_under_a_folder_is_reported(tmp_path: Path) -> None:
    # Given two log files, one holding the token twice and one holding the password
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text(f"x {TOKEN}\ny\nz {TOKEN}\n")
    (tmp_path / "logs" / "b.log").write_bytes(b"\xff\xfe binary " + PASSWORD.encode())
    scanner = SecretScanner({"token": TOKEN, "password": PASSWORD})

    # When the folder is scanned
    leaks = scanner.scan_paths([tmp_path / "logs"])

    # Then all three are reported with file and line
    found = sorted((Path(leak.where).name, leak.line, leak.secret) for leak in leaks)
    assert found == [("a.log", 1, "token"), ("a.log", 3, "token"), ("b.log", 1, "password")]


def test_clean_text_and_redacted_urls_report_nothing() -> None:
    # Given logs where the secrets were redacted
    scanner = SecretScanner({"token": TOKEN, "password": PASSWORD})
    text = "rtsp://***@10.0.0.5/stream\nAuthorization: Bearer ***\ntok_9f8e7d6 (cut)\n"

    # When they are scanned
    leaks = scanner.scan_text(text, where="log")

    # Then nothing is reported
    assert leaks == []


def test_a_short_secret_is_refused_because_it_would_match_innocent_text() -> None:
    # Given a four-character "secret"
    # When a scanner is built for it
    # Then it refuses, naming it
    with pytest.raises(ValueError, match="pin"):
        SecretScanner({"pin": "1234"})
