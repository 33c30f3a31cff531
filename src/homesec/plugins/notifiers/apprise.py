"""`apprise` notifier: push, chat and SMS through any Apprise URL (ntfy, Telegram, Pushover,
Signal, Slack, Discord, Gotify, SMS gateways...), with no code of ours per service.

URLs usually hold a token or a password, so they come from env vars: each name in `urls_env`
holds one or more URLs, separated by commas or whitespace. `urls` in the YAML is only for URLs
with nothing secret in them (a local `json://` receiver, say); one with a password is refused
there. Every value read from the environment, and each URL in it, is registered as a secret
with telemetry (by the field's type, `SecretEnv`), errors name a service only by where it is
configured ("entry 2 of APPRISE_URLS") and its kind ("Telegram"), and Apprise's own logger is
held at INFO (its DEBUG lines print whole URLs).

Title and body are Jinja2 templates (the alert's fields by name, see `templates/`); the
snapshot is attached when the service takes attachments. Each URL is one service, notified in
parallel through Apprise's async API within `timeout_s`. `send` raises when any service fails,
so the pipeline retries; the retry skips the services that already have that alert, so a
flaky one does not make the others notify twice.

The early detection message and the final alert of a clip share its `dedupe_key`. Services
that can replace a message by an id of the sender's choosing get it as that id, so the alert
takes the detection message's place: today Apprise's Home Assistant service (`hassio://`,
its `nid`, a persistent notification's id). Other services show both messages.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise
from apprise.attachment.memory import AttachMemory
from apprise.utils.parse import parse_urls
from cachetools import FIFOCache
from pydantic import Field, model_validator

from homesec.interfaces import NotifierConfig
from homesec.models.alert import Alert, DetectionEvent, SystemAlert
from homesec.models.digest import Digest
from homesec.models.enums import PluginType, RiskLevel
from homesec.models.env import SecretEnv
from homesec.plugins.notifiers.base import DirectNotifier
from homesec.plugins.notifiers.templates import (
    alert_context,
    checked,
    detection_summary,
    digest_message,
    environment,
    one_line,
    read_snapshot,
    snapshot_filename,
    system_context,
)
from homesec.plugins.registry import plugin

# Alerts partly delivered, remembered so a retry only notifies the services that missed them.
_PARTIAL_MEMORY = 256
# Apprise bounds each call by `timeout`; this is only a backstop for a service that ignores it.
_BACKSTOP_S = 2.0
# The URL argument of services that take the sender's message id (Home Assistant's `nid`),
# and what such an id may not contain.
_MESSAGE_ID_ARG = "nid"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_NOTIFY_TYPES: dict[RiskLevel | None, apprise.NotifyType] = {
    None: apprise.NotifyType.INFO,
    RiskLevel.LOW: apprise.NotifyType.INFO,
    RiskLevel.MEDIUM: apprise.NotifyType.WARNING,
    RiskLevel.HIGH: apprise.NotifyType.FAILURE,
}


class AppriseNotifierConfig(NotifierConfig):
    """Apprise URLs (secret ones through env vars), text templates and snapshot."""

    name: str = Field(default="apprise", min_length=1, description="Name of this sink in logs")
    urls_env: list[SecretEnv] = Field(
        default_factory=list,
        description="Env vars each holding Apprise URLs, comma or space separated; for any URL "
        "with a token, key or password",
    )
    urls: list[str] = Field(
        default_factory=list,
        description="Apprise URLs with no secret in them (a URL with a password is refused)",
    )
    title_template: str = Field(
        default="HomeSec · {{ camera_name }}: {{ activity_type or 'alert' }}"
        "{% if risk_level %} ({{ risk_level }} risk){% endif %}",
        description="Jinja2 title of clip alerts (the alert's fields by name)",
    )
    body_template: str = Field(
        default="{{ summary or notify_reason }}{% if view_url %}\n{{ view_url }}{% endif %}",
        description="Jinja2 body of clip alerts",
    )
    system_title_template: str = Field(
        default="HomeSec needs attention: {{ kind }}", description="Jinja2 title of system alerts"
    )
    system_body_template: str = Field(
        default="{{ message }}", description="Jinja2 body of system alerts"
    )
    attach_snapshot: bool = Field(
        default=True, description="Attach the snapshot where the service takes attachments"
    )
    timeout_s: float = Field(
        default=30.0, gt=0, description="Longest time one alert may take, all services together"
    )

    def all_urls(self) -> Iterator[tuple[str, str]]:
        """(where, URL) for every URL, the env vars' first; `where` never shows a secret."""
        for env in self.urls_env:
            for number, url in enumerate(_split_urls(env.value.get_secret_value()), start=1):
                yield f"entry {number} of {env.name}", url
        for number, url in enumerate(self.urls):
            yield f"urls[{number}] {url!r}", url

    @model_validator(mode="after")
    def _usable(self) -> AppriseNotifierConfig:
        for number, url in enumerate(self.urls):
            if _holds_secret(url):
                raise ValueError(
                    f"urls[{number}] must hold no secret (a password, token or key): put the URL"
                    " in an env var named in urls_env instead"
                )
        found = list(self.all_urls())
        if not found:
            raise ValueError("no Apprise URL: set urls_env (or urls)")
        for where, url in found:
            if not apprise.Apprise().add(url):
                raise ValueError(f"{where} is not a URL Apprise understands")
        _Templates(self)
        return self


def _holds_secret(url: str) -> bool:
    """Whether the URL carries something its service treats as private.

    Apprise knows, per service, which parts of a URL are secret (Telegram's bot token,
    Pushover's keys, a password): its privacy-masked form differs from the plain one.
    """
    if urlsplit(url).password:
        return True
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False  # not a URL Apprise understands: reported as such
    service = notifier[0]
    masked = service.url(privacy=True)  # type: ignore[no-untyped-call]  # unannotated in apprise
    return bool(masked != service.url(privacy=False))  # type: ignore[no-untyped-call]


def _split_urls(value: str) -> list[str]:
    # Apprise's own splitter keeps commas inside a URL's query (mailto://...?to=a,b) intact.
    urls = parse_urls(value)  # type: ignore[no-untyped-call]  # apprise leaves it unannotated
    return cast(list[str], urls)


class _Templates:
    """The compiled, checked templates of one config."""

    def __init__(self, config: AppriseNotifierConfig) -> None:
        env = environment()
        self.title = checked(env, "title_template", config.title_template)
        self.body = checked(env, "body_template", config.body_template)
        self.system_title = checked(
            env, "system_title_template", config.system_title_template, system=True
        )
        self.system_body = checked(
            env, "system_body_template", config.system_body_template, system=True
        )


class _Service:
    """One configured URL: its own Apprise instance, and a name that is safe to show."""

    def __init__(self, where: str, url: str) -> None:
        self.notifier = apprise.Apprise()
        self.notifier.add(url)
        # Not Apprise's privacy-masked URL: it keeps json:// paths and Telegram's bot token
        # sits where a host would be. Where it was configured, and the kind of service.
        self.label = f"{where} ({self.notifier[0].service_name})"
        self._url = url
        self._replaceable = _MESSAGE_ID_ARG in type(self.notifier[0]).template_args

    def notifier_for(self, message_id: str | None) -> apprise.Apprise:
        """The instance to notify with: one that names the message where the service can."""
        if message_id is None or not self._replaceable:
            return self.notifier
        parts = urlsplit(self._url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != _MESSAGE_ID_ARG]
        query.append((_MESSAGE_ID_ARG, _ID_UNSAFE.sub("_", message_id)))
        notifier = apprise.Apprise()
        notifier.add(urlunsplit(parts._replace(query=urlencode(query))))
        return notifier


@plugin(PluginType.NOTIFIER, "apprise", config=AppriseNotifierConfig)
class AppriseNotifier(DirectNotifier[AppriseNotifierConfig]):
    """Notifies every configured Apprise service; raises when any of them fails."""

    def __init__(self, config: AppriseNotifierConfig) -> None:
        super().__init__(config)
        self._templates = _Templates(config)
        self._services = [_Service(where, url) for where, url in config.all_urls()]
        # Apprise's DEBUG lines carry whole service URLs (tokens included, in forms our
        # redaction cannot match), so its logger never goes below INFO.
        apprise_logger = logging.getLogger(apprise.LOGGER_NAME)
        apprise_logger.setLevel(max(apprise_logger.level, logging.INFO))
        self._delivered_to: FIFOCache[str, set[int]] = FIFOCache(_PARTIAL_MEMORY)

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        context = alert_context(alert)
        await self._notify(
            alert.dedupe_key,
            alert.dedupe_key,
            one_line(self._templates.title.render(context)),
            self._templates.body.render(context),
            _NOTIFY_TYPES[alert.risk_level],
            await self._attachment(snapshot, alert),
        )

    async def send_detection(self, event: DetectionEvent, snapshot: Path | None = None) -> None:
        """The short early message: "person at front_door", with the snapshot."""
        title, body = detection_summary(event)
        attachment = await self._attachment(snapshot, event)
        await self._notify(None, event.dedupe_key, title, body, apprise.NotifyType.INFO, attachment)

    async def send_digest(self, digest: Digest) -> None:
        title, body = digest_message(digest)
        await self._notify(None, None, title, body, apprise.NotifyType.INFO, None)

    async def send_system(self, alert: SystemAlert) -> None:
        context = system_context(alert)
        title = one_line(self._templates.system_title.render(context))
        body = self._templates.system_body.render(context)
        await self._notify(None, None, title, body, apprise.NotifyType.FAILURE, None)

    async def _attachment(
        self, snapshot: Path | None, item: Alert | DetectionEvent
    ) -> tuple[bytes, str] | None:
        image = await read_snapshot(snapshot, item) if self._config.attach_snapshot else None
        return (image, snapshot_filename(item)) if image is not None else None

    async def _notify(
        self,
        key: str | None,
        message_id: str | None,
        title: str,
        body: str,
        notify_type: apprise.NotifyType,
        image: tuple[bytes, str] | None,
    ) -> None:
        done = self._delivered_to.pop(key, set()) if key else set()
        pending = [i for i in range(len(self._services)) if i not in done]
        problems = await asyncio.gather(
            *(
                self._notify_one(
                    self._services[i].notifier_for(message_id), title, body, notify_type, image
                )
                for i in pending
            )
        )
        failed = [(i, problem) for i, problem in zip(pending, problems, strict=True) if problem]
        self._last_delivery_ok = not failed
        if not failed:
            return
        if key is not None:
            self._delivered_to[key] = done | (set(pending) - {i for i, _ in failed})
        reasons = ", ".join(f"{self._services[i].label} {problem}" for i, problem in failed)
        total = len(self._services)
        raise ConnectionError(f"apprise: {len(failed)} of {total} service(s) failed: {reasons}")

    async def _notify_one(
        self,
        notifier: apprise.Apprise,
        title: str,
        body: str,
        notify_type: apprise.NotifyType,
        image: tuple[bytes, str] | None,
    ) -> str | None:
        """None when delivered, else what went wrong."""
        attachments = None
        if image is not None:
            # One attachment object per call: it is a stream that a service reads to the end.
            content, filename = image
            attachments = apprise.AppriseAttachment()
            memory = AttachMemory(  # type: ignore[no-untyped-call]  # unannotated in apprise
                content=content, name=filename, mimetype="image/jpeg"
            )
            attachments.add(memory)
        timeout = self._config.timeout_s
        try:
            async with asyncio.timeout(timeout + _BACKSTOP_S):
                result = await notifier.async_notify(
                    body=body,
                    title=title,
                    notify_type=notify_type,
                    body_format=apprise.NotifyFormat.TEXT,
                    attach=attachments,
                    timeout=timeout,
                )
        except TimeoutError:
            return f"timed out after {timeout:g} s"
        if result.status == apprise.AppriseResultStatus.TIMEOUT:
            return f"timed out after {timeout:g} s"
        return None if result else "failed"
