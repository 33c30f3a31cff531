"""`email` notifier: alerts as e-mail over SMTP (aiosmtplib), bodies from Jinja2 templates.

Each alert is one message to `to_addresses`: the subject from `subject_template`, a plain-text
and an HTML body from `email_alert.txt.j2` and `email_alert.html.j2` (defaults in `templates/`;
a file of the same name in `template_dir` replaces one), the clip's `view_url` as a link, and
the snapshot attached (`snapshot: attach`), shown in the HTML as a cid: image (`inline`), or
left out (`none`). System alerts get their own subject and `email_system.txt.j2`; which sinks
receive them is the notifier entry's `system_alerts` (routing is HomeSec's, not the plugin's).

Transport: `security: starttls` (port 587 by default), `tls` (implicit TLS, 465) or `none`
(25, a trusted relay; credentials are refused there, they would cross the wire in clear). The
user name and password come from the env vars named by `username_env` and `password_env`.
One connection per message; `send` raises within `timeout_s` on any failure, so the pipeline
retries it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Annotated, Literal

import aiosmtplib
from pydantic import AfterValidator, DirectoryPath, Field, FilePath, model_validator

from homesec.interfaces import NotifierConfig
from homesec.models.alert import Alert, DetectionEvent, SystemAlert
from homesec.models.digest import Digest
from homesec.models.enums import PluginType
from homesec.models.env import PlainEnv, SecretEnv
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

logger = logging.getLogger(__name__)

EVENT_RECIPIENTS_REFUSED = "email_recipients_refused"

Security = Literal["starttls", "tls", "none"]
_DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
_ALERT_TEXT = "email_alert.txt.j2"
_ALERT_HTML = "email_alert.html.j2"
_SYSTEM_TEXT = "email_system.txt.j2"


def _check_address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or any(char in value for char in "\r\n"):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


Address = Annotated[str, AfterValidator(_check_address)]


class EmailNotifierConfig(NotifierConfig):
    """SMTP server, credentials (as env var names), addresses, templates and snapshot."""

    name: str = Field(default="email", min_length=1, description="Name of this sink in logs")
    host: str = Field(min_length=1, description="SMTP server host name or address")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port; by default 587 (starttls), 465 (tls) or 25 (none)",
    )
    security: Security = Field(
        default="starttls",
        description="starttls (upgrade after connecting), tls (implicit TLS) or none",
    )
    username_env: PlainEnv | None = Field(
        default=None, description="Env var holding the SMTP user name"
    )
    password_env: SecretEnv | None = Field(
        default=None, description="Env var holding the SMTP password"
    )
    ca_file: FilePath | None = Field(
        default=None, description="CA bundle that signed the server's certificate (default: system)"
    )
    from_address: Address = Field(description="Sender, e.g. 'HomeSec <homesec@example.com>'")
    to_addresses: list[Address] = Field(min_length=1, description="Recipients")
    subject_template: str = Field(
        default="[HomeSec] {{ camera_name }}: {{ activity_type or 'alert' }}"
        "{% if risk_level %} ({{ risk_level }} risk){% endif %}",
        description="Jinja2 subject of clip alerts (the alert's fields by name)",
    )
    system_subject_template: str = Field(
        default="[HomeSec] needs attention: {{ kind }}",
        description="Jinja2 subject of system alerts",
    )
    template_dir: DirectoryPath | None = Field(
        default=None,
        description=f"Folder whose {_ALERT_TEXT}, {_ALERT_HTML} or {_SYSTEM_TEXT} replace "
        "the defaults",
    )
    snapshot: Literal["attach", "inline", "none"] = Field(
        default="attach",
        description="Snapshot as an attachment, as an image in the HTML body, or not at all",
    )
    timeout_s: float = Field(
        default=30.0, gt=0, description="Longest time one message may take to deliver"
    )

    @model_validator(mode="after")
    def _consistent(self) -> EmailNotifierConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together")
        if self.security == "none" and (self.username_env or self.ca_file):
            raise ValueError("username_env and ca_file need security starttls or tls")
        _Templates(self)
        return self


class _Templates:
    """The compiled, checked templates of one config."""

    def __init__(self, config: EmailNotifierConfig) -> None:
        env = environment(config.template_dir)
        self.subject = checked(env, "subject_template", config.subject_template)
        self.text = checked(env, _ALERT_TEXT)
        self.html = checked(env, _ALERT_HTML)
        self.system_subject = checked(
            env, "system_subject_template", config.system_subject_template, system=True
        )
        self.system_text = checked(env, _SYSTEM_TEXT, system=True)


@plugin(PluginType.NOTIFIER, "email", config=EmailNotifierConfig)
class EmailNotifier(DirectNotifier[EmailNotifierConfig]):
    """Mails each alert; one SMTP connection per message, bounded by `timeout_s`."""

    def __init__(self, config: EmailNotifierConfig) -> None:
        super().__init__(config)
        self._templates = _Templates(config)
        self._username = config.username_env.value if config.username_env else None
        self._password = (
            config.password_env.value.get_secret_value() if config.password_env else None
        )
        self._port = config.port or _DEFAULT_PORTS[config.security]
        self._tls_context = (
            ssl.create_default_context(cafile=config.ca_file) if config.ca_file else None
        )
        self._sender = parseaddr(config.from_address)[1]
        self._recipients = [parseaddr(address)[1] for address in config.to_addresses]

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        image = await self._snapshot(snapshot, alert)
        inline = image is not None and self._config.snapshot == "inline"
        cid = make_msgid(domain="homesec")[1:-1] if inline else None
        context = alert_context(alert, snapshot_cid=cid)
        message = self._new_message(self._templates.subject.render(context), alert.clip_id)
        message.set_content(self._templates.text.render(context))
        message.add_alternative(self._templates.html.render(context), subtype="html")
        html_part = message.get_body(preferencelist=("html",))
        if image is not None and cid is not None and html_part is not None:
            filename = snapshot_filename(alert)
            html_part.add_related(image, "image", "jpeg", cid=f"<{cid}>", filename=filename)
        elif image is not None:
            message.add_attachment(image, "image", "jpeg", filename=snapshot_filename(alert))
        await self._deliver(message)

    async def send_detection(self, event: DetectionEvent, snapshot: Path | None = None) -> None:
        """The short early e-mail: "person at front_door", with the snapshot."""
        title, body = detection_summary(event)
        message = self._new_message(f"HomeSec: {title}", event.clip_id)
        message.set_content(body)
        if (image := await self._snapshot(snapshot, event)) is not None:
            message.add_attachment(image, "image", "jpeg", filename=snapshot_filename(event))
        await self._deliver(message)

    async def send_digest(self, digest: Digest) -> None:
        """The digest as a plain-text e-mail: its text, then the clips worth a look."""
        subject, body = digest_message(digest)
        message = self._new_message(subject)
        message.set_content(body + "\n")
        await self._deliver(message)

    async def send_system(self, alert: SystemAlert) -> None:
        context = system_context(alert)
        message = self._new_message(self._templates.system_subject.render(context))
        message.set_content(self._templates.system_text.render(context))
        await self._deliver(message)

    async def _snapshot(self, snapshot: Path | None, item: Alert | DetectionEvent) -> bytes | None:
        return await read_snapshot(snapshot, item) if self._config.snapshot != "none" else None

    def _new_message(self, subject: str, clip_id: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = one_line(subject)
        message["From"] = self._config.from_address
        message["To"] = ", ".join(self._config.to_addresses)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        if clip_id is not None:
            message["X-HomeSec-Clip-Id"] = clip_id
        return message

    async def _deliver(self, message: EmailMessage) -> None:
        server = f"{self._config.host}:{self._port}"
        timeout = self._config.timeout_s
        with self._delivery():
            try:
                async with asyncio.timeout(timeout):
                    refused, _ = await aiosmtplib.send(
                        message,
                        sender=self._sender,
                        recipients=self._recipients,
                        hostname=self._config.host,
                        port=self._port,
                        username=self._username,
                        password=self._password,
                        use_tls=self._config.security == "tls",
                        start_tls=self._config.security == "starttls",
                        tls_context=self._tls_context,
                        timeout=timeout,
                    )
            except TimeoutError:
                raise TimeoutError(f"e-mail via {server}: no answer within {timeout:g} s") from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise ConnectionError(f"e-mail via {server} failed: {exc}") from exc
        if refused:
            # Some recipients took it: a retry would mail them twice, so only say so.
            logger.warning(
                "E-mail notifier %s: %d recipient(s) refused by %s: %s",
                self.name,
                len(refused),
                server,
                ", ".join(f"{response.code} {response.message}" for response in refused.values()),
                extra={"event_type": EVENT_RECIPIENTS_REFUSED, "notifier": self.name},
            )
