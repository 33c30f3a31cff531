"""Logging: structured extras in text and JSON lines, secrets never written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

import tests.fakes.plugins  # noqa: F401  (registers the fake filter and VLM)
from homesec.config_loader import load_config
from homesec.telemetry import JsonFormatter, TextFormatter, redact, register_secret
from tests.fakes.builders import config_dict


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("homesec.test", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_url_credentials_and_registered_secrets_are_redacted() -> None:
    # Given a registered secret and a camera URL with credentials
    register_secret("sup3r-s3cret-token")
    line = "rtsp://admin:hunter2@10.0.0.5:554/stream token=sup3r-s3cret-token"

    # When the text is redacted
    clean = redact(line)

    # Then neither the password nor the token survive, the host does
    assert "hunter2" not in clean and "sup3r-s3cret-token" not in clean
    assert clean == "rtsp://***@10.0.0.5:554/stream token=***"


def test_a_secret_holding_a_shorter_one_is_redacted_whole() -> None:
    # Given two secrets, one inside the other, registered short one first
    register_secret("tr0ub4dor")
    register_secret("tr0ub4dor-refresh-token")

    # When a line shows the longer one
    clean = redact("refreshing with tr0ub4dor-refresh-token now")

    # Then none of it survives (not even the part after the shorter secret)
    assert clean == "refreshing with *** now"


def test_the_urls_a_secret_lists_and_their_passwords_are_redacted_on_their_own() -> None:
    # Given a registered secret listing two URLs, one with a %-encoded password
    register_secret("rtsp://cam:p%40ss-8812@10.0.0.9/live, tgram://bot-token-5521/chat")

    # When lines show one URL alone, and the password as written and decoded
    lines = [
        "posting to tgram://bot-token-5521/chat failed",
        "ffmpeg: auth p%40ss-8812 refused",
        "ffmpeg: auth p@ss-8812 refused",
    ]
    clean = [redact(line) for line in lines]

    # Then none of them survives
    assert clean == [
        "posting to *** failed",
        "ffmpeg: auth *** refused",
        "ffmpeg: auth *** refused",
    ]


def test_json_lines_carry_the_structured_extras() -> None:
    # Given a record with structured extras and a secret in its message
    register_secret("another-secret-value")
    record = _record(
        "connect to postgresql://homesec:another-secret-value@db/homesec",
        event_type="vlm_usage",
        clip_id="front_door_1700000000.mp4",
    )

    # When formatted as JSON and as text
    payload = json.loads(JsonFormatter().format(record))
    text = TextFormatter().format(record)

    # Then the extras are fields (JSON) or key=value pairs (text) and the secret is gone
    assert payload["event_type"] == "vlm_usage"
    assert payload["clip_id"] == "front_door_1700000000.mp4"
    assert "another-secret-value" not in payload["message"]
    assert "event_type=vlm_usage" in text and "another-secret-value" not in text


@pytest.mark.parametrize(
    "secret",
    ['pa"ss-word-1', "back\\slash-2", "pässwörd-3", "tab\tand\nnewline-4"],
    ids=["quote", "backslash", "non-ascii", "control"],
)
def test_json_lines_redact_secrets_that_json_would_escape(secret: str) -> None:
    # Given a registered secret holding a character JSON escapes, in a message and an extra
    register_secret(secret)
    record = _record(f"token is {secret}", clip_id="x", detail={"password": secret})

    # When the record is formatted as a JSON line
    line = JsonFormatter().format(record)

    # Then the secret appears in no form: neither as written nor as JSON escaped it
    payload = json.loads(line)
    assert secret not in line and json.dumps(secret)[1:-1] not in line
    assert payload["message"] == "token is ***" and payload["detail"] == {"password": "***"}


def test_config_secrets_are_registered_but_user_names_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a config file whose MQTT sink names a user and a password env var
    monkeypatch.setenv("TEST_TELEMETRY_MQTT_USER", "homesec-telemetry-user")
    monkeypatch.setenv("TEST_TELEMETRY_MQTT_PASSWORD", "pw-telemetry-0451")
    mqtt = {
        "backend": "mqtt",
        "config": {
            "host": "127.0.0.1",
            "username_env": "TEST_TELEMETRY_MQTT_USER",
            "password_env": "TEST_TELEMETRY_MQTT_PASSWORD",
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(tmp_path, notifiers=[mqtt])))

    # When the file is loaded (nothing else registers) and a line naming both is redacted
    load_config(path)
    clean = redact("login homesec-telemetry-user with pw-telemetry-0451")

    # Then the password is hidden and the user name, not a secret, stays readable
    assert clean == "login homesec-telemetry-user with ***"
