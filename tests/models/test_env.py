"""Env var fields: a name in the YAML, the value in Python; secret ones registered for redaction."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from homesec.models.env import OptionalSecretEnv, PlainEnv, SecretEnv
from homesec.telemetry import redact


class _Login(BaseModel):
    user_env: PlainEnv
    password_env: SecretEnv
    token_env: OptionalSecretEnv


def test_a_validated_secret_is_a_secret_str_kept_out_of_logs_and_dumps_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given env vars holding a user name, a password and a token
    monkeypatch.setenv("TEST_ENV_USER", "env-test-user-7731")
    monkeypatch.setenv("TEST_ENV_PASSWORD", "env-test-pw-7731")
    monkeypatch.setenv("TEST_ENV_TOKEN", "env-test-token-7731")

    # When a config naming them is validated (nothing else is done with it)
    login = _Login.model_validate(
        {
            "user_env": "TEST_ENV_USER",
            "password_env": "TEST_ENV_PASSWORD",
            "token_env": "TEST_ENV_TOKEN",
        }
    )

    # Then the values are there, the secret ones as SecretStr and redacted from any log line
    assert login.user_env.value == "env-test-user-7731"
    assert login.password_env.value == SecretStr("env-test-pw-7731")
    assert login.token_env.required() == SecretStr("env-test-token-7731")
    line = "env-test-user-7731 env-test-pw-7731 env-test-token-7731"
    assert redact(line) == "env-test-user-7731 *** ***"
    # And the model shows and dumps names only
    assert "env-test-pw-7731" not in repr(login) and "env-test-token-7731" not in repr(login)
    assert login.model_dump(mode="json") == {
        "user_env": "TEST_ENV_USER",
        "password_env": "TEST_ENV_PASSWORD",
        "token_env": "TEST_ENV_TOKEN",
    }


def test_unset_variables_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no variable is set
    for name in ("TEST_ENV_USER", "TEST_ENV_PASSWORD", "TEST_ENV_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    # When a config naming them is validated
    with pytest.raises(ValidationError) as caught:
        _Login.model_validate(
            {
                "user_env": "TEST_ENV_USER",
                "password_env": "TEST_ENV_PASSWORD",
                "token_env": "TEST_ENV_TOKEN",
            }
        )

    # Then the required ones are refused, each naming its variable; the optional one is not
    messages = {error["loc"][0]: error["msg"] for error in caught.value.errors()}
    assert messages == {
        "user_env": "Value error, environment variable TEST_ENV_USER is not set",
        "password_env": "Value error, environment variable TEST_ENV_PASSWORD is not set",
    }


def test_an_unset_optional_secret_is_off_until_a_feature_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an optional secret whose variable is unset, the required ones set
    monkeypatch.delenv("TEST_ENV_TOKEN", raising=False)
    monkeypatch.setenv("TEST_ENV_USER", "env-test-user-7731")
    monkeypatch.setenv("TEST_ENV_PASSWORD", "env-test-pw-7731")

    # When it is validated
    token = _Login.model_validate(
        {
            "user_env": "TEST_ENV_USER",
            "password_env": "TEST_ENV_PASSWORD",
            "token_env": "TEST_ENV_TOKEN",
        }
    ).token_env

    # Then it holds no value, and a feature that requires it is refused by the name
    assert token.value is None
    with pytest.raises(ValueError, match="environment variable TEST_ENV_TOKEN is not set"):
        token.required()
