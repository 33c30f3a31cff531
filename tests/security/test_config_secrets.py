"""Secrets are only ever env-var names in the config: every model that could hold one, checked.

Walks the core `Config` and every registered plugin's config model (nested models included)
and requires each field named like a secret to be a secret env type (`SecretEnv`, whose value
is registered for redaction), and each `*_env` field to be an env type, the plain one only
where the value is known not to be secret; then feeds literal secrets to those fields, and to
whole config files, and expects a refusal that says what to do without quoting the secret back.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from homesec.config_loader import load_config
from homesec.errors import ConfigError
from homesec.models.config import Config
from homesec.models.enums import PluginType
from homesec.models.env import OptionalSecretEnv, PlainEnv, SecretEnv
from homesec.plugins.registry import available, config_model
from tests.fakes.builders import config_dict

SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "token", "secret", "key", "apikey", "dsn"}
    | {"credential", "credentials", "auth", "bearer", "cookie", "private"}
)
# Fields whose name sounds secret but whose value is not; each with the reason.
NOT_SECRET = {
    "sse_kms_key_id": "names a KMS key (an id or ARN), holds no key material",
    "auth_enabled": "a switch",
}
# `PlainEnv` fields (values kept in the logs), each with the reason its value is no secret.
PLAIN_ENV = {
    "username_env": "a user name: registered, a common word would be starred out of every log",
}
SECRET_ENV_TYPES = (SecretEnv, OptionalSecretEnv)
LITERAL_SECRET = "sk-Liter4l/Secret+Value=="


def _models(model: type[BaseModel], where: str) -> Iterator[tuple[str, type[BaseModel]]]:
    yield where, model
    for name, field in model.model_fields.items():
        for inner in _types_in(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                yield from _models(inner, f"{where}.{name}")


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for argument in typing.get_args(annotation):
        yield from _types_in(argument)


def _all_models() -> list[tuple[str, type[BaseModel]]]:
    found = list(_models(Config, "Config"))
    for kind in PluginType:
        for backend in available(kind):
            found += _models(config_model(kind, backend), f"{kind}.{backend}")
    return found


def _secret_like(name: str) -> bool:
    words = set(name.lower().split("_"))
    return name not in NOT_SECRET and (bool(words & SECRET_WORDS) or name.endswith("_env"))


def _secret_fields() -> list[tuple[str, type[BaseModel], str, FieldInfo]]:
    return [
        (where, model, name, field)
        for where, model in _all_models()
        for name, field in model.model_fields.items()
        if _secret_like(name)
    ]


def _has_type(field: FieldInfo, types: tuple[type, ...]) -> bool:
    return any(inner in types for inner in _types_in(field.rebuild_annotation()))


def test_the_walk_covers_every_plugin_kind_and_the_known_secret_fields() -> None:
    # Given the registry and the core config
    # When the models are walked
    fields = {f"{where}.{name}" for where, _, name, _ in _secret_fields()}
    kinds = {where.split(".")[0] for where, _ in _all_models()}

    # Then every kind is there, and so are secrets we know of
    assert kinds >= {"Config", *(str(kind) for kind in PluginType)}
    assert {
        "Config.state_store.dsn_env",
        "Config.server.api_key_env",
        "source.ftp.password_env",
        "source.rtsp.rtsp_url_env",
        "storage.s3.secret_access_key_env",
        "storage.dropbox.refresh_token_env",
        "analyzer.openai.api_key_env",
        "notifier.mqtt.password_env",
        "notifier.email.password_env",
        "notifier.webhook.secret_env",
        "source.ftp.username_env",
        "notifier.mqtt.username_env",
    } <= fields


def test_every_secret_like_field_is_a_secret_env_var() -> None:
    # Given every config field whose name suggests a secret, or names an env var
    fields = _secret_fields()

    # When their types are inspected
    not_secret_env = [
        f"{where}.{name}"
        for where, _, name, field in fields
        if not _has_type(field, SECRET_ENV_TYPES)
        and not (name in PLAIN_ENV and _has_type(field, (PlainEnv,)))
    ]

    # Then each is a secret env type, registered for redaction (a user name may be a plain
    # one): no field can hold the value itself, nor leave it out of the redaction
    assert not_secret_env == []


@pytest.mark.parametrize(
    ("where", "model", "name"),
    [
        pytest.param(where, model, name, id=f"{where}.{name}")
        for where, model, name, _ in _secret_fields()
    ],
)
def test_a_literal_secret_in_a_secret_field_is_refused_without_quoting_it(
    where: str, model: type[BaseModel], name: str
) -> None:
    # Given a literal secret where the env var's name belongs
    field = model.model_fields[name]
    value: Any = [LITERAL_SECRET] if typing.get_origin(field.annotation) is list else LITERAL_SECRET

    # When the model is validated
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: value})

    # Then that field is refused, saying an env var's name is expected, and never echoing it
    errors = [error for error in caught.value.errors() if error["loc"][:1] == (name,)]
    assert errors, caught.value
    assert all("name of an environment variable" in error["msg"] for error in errors)
    assert all(LITERAL_SECRET not in error["msg"] for error in caught.value.errors())


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("sections", "where"),
    [
        (
            {"state_store": {"dsn_env": "postgresql://homesec:Pw.123@db/homesec"}},
            "state_store.dsn_env",
        ),
        ({"server": {"auth_enabled": False, "api_key_env": LITERAL_SECRET}}, "server.api_key_env"),
        (
            {
                "notifiers": [
                    {"backend": "mqtt", "config": {"host": "h", "password_env": LITERAL_SECRET}}
                ]
            },
            "notifiers[0].config.password_env",
        ),
        (
            {
                "notifiers": [
                    {"backend": "mqtt", "config": {"host": "h", "password": LITERAL_SECRET}}
                ]
            },
            "notifiers[0].config.password",
        ),
        (
            {
                "vlm": {
                    "backend": "openai",
                    "config": {"base_url": "https://u:Pw.123@vlm.example/v1", "model": "m"},
                }
            },
            "vlm.config.base_url",
        ),
    ],
    ids=["dsn", "api-key", "mqtt-password-env", "mqtt-password", "url-with-password"],
)
def test_a_config_file_with_a_literal_secret_is_refused_with_a_clear_message(
    tmp_path: Path, sections: dict[str, Any], where: str
) -> None:
    # Given a config file with a secret's value written in it
    path = _write(tmp_path, config_dict(tmp_path, **sections))

    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        load_config(path)

    # Then the key is named, the reason points at env vars, and the value is not repeated
    problems = [p for p in caught.value.problems if p.startswith(f"{where}:")]
    assert any("environment variable" in problem for problem in problems), problems
    assert LITERAL_SECRET not in str(caught.value) and "Pw.123" not in str(caught.value)
