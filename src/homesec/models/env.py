"""Environment variables named in the config: the YAML holds a variable's name, never its value.

A field's type says what the value is. `SecretEnv` (and `OptionalSecretEnv`, which may be unset:
the feature then stays off) holds a secret: validating the config (`homesec validate` too)
reads it into a `SecretStr` and registers it with telemetry's redaction (with any URL it lists
and such a URL's password), so no log line written once the config is loaded can show it.
`PlainEnv` holds a value that is no secret (a user name) and is never registered: a user called
"homesec" would otherwise be starred out of every logger name.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Self

from pydantic import GetCoreSchemaHandler, SecretStr
from pydantic_core import CoreSchema, core_schema

from homesec.telemetry import register_secret

_ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _NamedEnv(ABC):
    """A name in the YAML (and in dumps and JSON schemas), the resolved variable in Python."""

    name: str

    @classmethod
    @abstractmethod
    def _resolve(cls, name: str) -> Self:
        """The variable named `name`, read (and checked) now."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            lambda name: cls._resolve(_checked_name(name)),
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda env: env.name, return_schema=core_schema.str_schema()
            ),
        )


@dataclass(frozen=True)
class SecretEnv(_NamedEnv):
    """A set environment variable holding a secret, and its value (registered for redaction)."""

    value: SecretStr

    @classmethod
    def _resolve(cls, name: str) -> Self:
        return cls(name, _secret(_required(name)))


@dataclass(frozen=True)
class OptionalSecretEnv(_NamedEnv):
    """An environment variable holding a secret, and its value unless it is unset."""

    value: SecretStr | None

    @classmethod
    def _resolve(cls, name: str) -> Self:
        value = os.environ.get(name)
        return cls(name, None if value is None else _secret(value))

    def required(self) -> SecretStr:
        """The value, for a feature switched on: refused while the variable is unset."""
        if self.value is None:
            raise ValueError(_unset(self.name))
        return self.value


@dataclass(frozen=True)
class PlainEnv(_NamedEnv):
    """A set environment variable holding a value that is not secret (a user name)."""

    value: str

    @classmethod
    def _resolve(cls, name: str) -> Self:
        return cls(name, _required(name))


def _checked_name(name: str) -> str:
    # The value is never quoted back: when it is not a name, it may be the secret itself.
    if not _ENV_VAR_NAME.fullmatch(name):
        raise ValueError(
            "must be the name of an environment variable (letters, digits and '_'), "
            "not a secret value: put the value in the environment and name it here"
        )
    return name


def _required(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(_unset(name))
    return value


def _secret(value: str) -> SecretStr:
    register_secret(value)
    return SecretStr(value)


def _unset(name: str) -> str:
    return f"environment variable {name} is not set"
