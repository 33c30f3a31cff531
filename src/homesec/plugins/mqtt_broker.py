"""How a plugin reaches an MQTT broker: address, login (env var names), TLS, and a client.

Shared by every plugin that speaks MQTT (the `mqtt` notifier publishes to a broker, the
`frigate` source follows one), so a broker is configured with the same keys everywhere.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import BaseModel, Field, FilePath, model_validator

from homesec.errors import CheckFailed
from homesec.models.env import PlainEnv, SecretEnv


class BrokerSettings(BaseModel):
    """The keys of a broker connection (mixed into a plugin's config model)."""

    host: str = Field(default="localhost", min_length=1, description="Broker host name or address")
    port: int = Field(
        default=1883, ge=1, le=65535, description="Broker port (usually 8883 for TLS)"
    )
    client_id: str | None = Field(
        default=None, description="MQTT client identifier; a random one when unset"
    )
    username_env: PlainEnv | None = Field(
        default=None, description="Env var holding the broker user name"
    )
    password_env: SecretEnv | None = Field(
        default=None, description="Env var holding the broker password (needs username_env)"
    )
    tls: bool = Field(default=False, description="Connect over TLS")
    ca_file: FilePath | None = Field(
        default=None, description="CA bundle that signed the broker's certificate (default: system)"
    )
    certfile: FilePath | None = Field(
        default=None, description="Client certificate, for brokers that require one"
    )
    keyfile: FilePath | None = Field(
        default=None, description="Private key of certfile, when not inside certfile"
    )
    tls_insecure: bool = Field(
        default=False,
        description="Accept a certificate that does not name `host` (self-signed setups only)",
    )
    keepalive_s: int = Field(
        default=60, ge=5, le=65535, description="MQTT keepalive: how soon a dead link is noticed"
    )
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for the broker's CONNACK or a publish ack before reconnecting",
    )
    reconnect_min_s: float = Field(
        default=1.0, gt=0, description="First wait before reconnecting to an unreachable broker"
    )
    reconnect_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between reconnection attempts"
    )

    @model_validator(mode="after")
    def _consistent_broker(self) -> BrokerSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        if self.password_env is not None and self.username_env is None:
            raise ValueError("password_env needs username_env")
        tls_options = (self.ca_file, self.certfile, self.keyfile)
        if not self.tls and (any(tls_options) or self.tls_insecure):
            raise ValueError("ca_file, certfile, keyfile and tls_insecure need tls: true")
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("keyfile needs certfile")
        return self

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class Broker:
    """Builds clients for one broker; the login and TLS context are resolved once."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self._username = settings.username_env.value if settings.username_env else None
        self._password = (
            settings.password_env.value.get_secret_value() if settings.password_env else None
        )
        self._tls_context = _tls_context(settings)

    def client(self, **options: Any) -> aiomqtt.Client:
        """A new client with the configured address, login, TLS and timeouts; `options` adds
        to or overrides them (`will=...`, `clean_session=False`, ...)."""
        settings = self.settings
        arguments: dict[str, Any] = {
            "hostname": settings.host,
            "port": settings.port,
            "identifier": settings.client_id,
            "username": self._username,
            "password": self._password,
            "keepalive": settings.keepalive_s,
            "timeout": settings.timeout_s,
            "tls_context": self._tls_context,
        }
        return aiomqtt.Client(**(arguments | options))

    async def check_login(self, timeout_s: float) -> str:
        """Connect and disconnect (for `homesec doctor`), under a client id of its own: the
        configured one would take a running HomeSec's session off the broker."""
        settings = self.settings
        try:
            async with self.client(identifier=None, timeout=timeout_s):
                pass
        except MqttConnectError as exc:
            named = [env.name for env in (settings.username_env, settings.password_env) if env]
            login = (
                f"the user and password in {' and '.join(f'${name}' for name in named)}"
                if named
                else "username_env and password_env (the broker wants a login)"
            )
            message = f"the broker at {settings.where} refused the login ({exc}): check {login}"
            raise CheckFailed(message, exc) from exc
        except aiomqtt.MqttError as exc:
            raise CheckFailed(
                f"cannot connect to the broker at {settings.where} ({exc}): is it running? "
                "check host, port and tls",
                exc,
            ) from exc
        return f"logged in at {settings.where}" + (" with TLS" if settings.tls else "")


def _tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.certfile is not None:
        context.load_cert_chain(settings.certfile, settings.keyfile)
    if settings.tls_insecure:
        context.check_hostname = False
    return context
