"""`webhook` notifier: POSTs each alert's JSON (exactly `Alert.model_dump_json()`) to a URL.

The body is the MQTT contract's payload; `X-HomeSec-Event` says `alert`, `system` (the body
is the JSON of `SystemAlert`) or `digest` (the JSON of `Digest`, for a sink with
`digest: true`). The snapshot is not sent: the body is the contract, nothing more.

Signature (with `secret_env`): every request carries

    X-HomeSec-Timestamp: <unix seconds when sent>
    X-HomeSec-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The receiver recomputes the HMAC over the timestamp header, a dot, and the raw body bytes
exactly as received (before any JSON parsing), compares in constant time, and rejects a
timestamp more than a few minutes old. The timestamp is inside the signed bytes, so a captured
request cannot be replayed later with a fresh one; a replay within the window is still the
same alert, which the receiver can drop by its `dedupe_key`.

The URL often holds a secret (a Home Assistant webhook id, a Slack token), so it may come from
the env var named by `url_env`; logs and errors show only its scheme, host and port. `send`
raises on a connection error, a timeout (`timeout_s`, for the whole request) or a non-2xx
answer, so the pipeline retries it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, FilePath, model_validator

from homesec import __version__
from homesec.interfaces import NotifierConfig
from homesec.models.alert import Alert, SystemAlert
from homesec.models.digest import Digest
from homesec.models.enums import PluginType
from homesec.models.env import SecretEnv
from homesec.plugins.notifiers.base import DirectNotifier
from homesec.plugins.registry import plugin


class WebhookNotifierConfig(NotifierConfig):
    """Receiver URL (or the env var holding it), signing secret, timeout."""

    name: str = Field(default="webhook", min_length=1, description="Name of this sink in logs")
    url: str | None = Field(
        default=None, description="Receiver URL, when nothing in it is secret (else url_env)"
    )
    url_env: SecretEnv | None = Field(
        default=None, description="Env var holding the receiver URL (one with a token in it)"
    )
    secret_env: SecretEnv | None = Field(
        default=None,
        description="Env var holding the HMAC-SHA256 key; requests are then signed",
    )
    ca_file: FilePath | None = Field(
        default=None, description="CA bundle that signed the receiver's certificate"
    )
    timeout_s: float = Field(
        default=10.0, gt=0, description="Longest time one request may take, connect to answer"
    )

    @model_validator(mode="after")
    def _one_url(self) -> WebhookNotifierConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url and url_env")
        parts = urlsplit(self.target_url())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            where = f"the value of {self.url_env.name}" if self.url_env else "url"
            raise ValueError(f"{where} must be an http:// or https:// URL with a host")
        return self

    def target_url(self) -> str:
        if self.url_env is not None:
            return self.url_env.value.get_secret_value()
        assert self.url is not None  # the validator wants one of the two
        return self.url


@plugin(PluginType.NOTIFIER, "webhook", config=WebhookNotifierConfig)
class WebhookNotifier(DirectNotifier[WebhookNotifierConfig]):
    """Posts alerts with one pooled httpx client, closed by aclose()."""

    def __init__(self, config: WebhookNotifierConfig) -> None:
        super().__init__(config)
        self._url = config.target_url()
        parts = urlsplit(self._url)
        # Only what is safe to log: the path and query may be the secret.
        self._target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._secret = (
            config.secret_env.value.get_secret_value().encode() if config.secret_env else None
        )
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=config.ca_file) if config.ca_file else True
        )
        self._client = httpx.AsyncClient(
            timeout=config.timeout_s,
            verify=verify,
            headers={"User-Agent": f"HomeSec/{__version__}", "Content-Type": "application/json"},
        )

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        await self._post("alert", alert.model_dump_json().encode())

    async def send_system(self, alert: SystemAlert) -> None:
        await self._post("system", alert.model_dump_json().encode())

    async def send_digest(self, digest: Digest) -> None:
        await self._post("digest", digest.model_dump_json().encode())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, kind: Literal["alert", "system", "digest"], body: bytes) -> None:
        headers: dict[str, str] = {"X-HomeSec-Event": kind}
        if self._secret is not None:
            timestamp = str(int(time.time()))
            signed = timestamp.encode() + b"." + body
            digest = hmac.new(self._secret, signed, hashlib.sha256).hexdigest()
            headers |= {"X-HomeSec-Timestamp": timestamp, "X-HomeSec-Signature": f"sha256={digest}"}
        timeout = self._config.timeout_s
        with self._delivery():
            try:
                # httpx times each phase (connect, write, read); this bounds the whole request.
                async with asyncio.timeout(timeout):
                    response = await self._client.post(self._url, content=body, headers=headers)
            except (TimeoutError, httpx.TimeoutException):
                raise TimeoutError(
                    f"webhook {self._target}: no answer within {timeout:g} s"
                ) from None
            except httpx.HTTPError as exc:
                raise ConnectionError(f"webhook {self._target} failed: {exc!r}") from exc
            if not response.is_success:
                raise ConnectionError(
                    f"webhook {self._target} answered HTTP {response.status_code} "
                    f"{response.reason_phrase}"
                )
