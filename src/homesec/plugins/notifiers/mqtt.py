"""`mqtt` notifier: alerts to Home Assistant through an MQTT broker (Mosquitto).

Clip alerts go to `homecam/alerts/{camera_name}` as the JSON of `Alert`, QoS 1, not retained;
system alerts go to `homecam/system/errors` as the JSON of `SystemAlert` (SPEC.md section 3).

`send()` never waits on the broker: it puts the message in a bounded outbox and returns. One
background connection task publishes the outbox in order, waiting for the broker's ack of each
message, and reconnects forever with exponential backoff and jitter. A broker outage therefore
delays alerts instead of losing them; beyond `max_pending` queued messages the oldest are
dropped (counted in `dropped`, logged at ERROR). Delivery is at least once: a message whose
ack was lost is published again after the reconnect. Alerts, detection events and system
alerts are also written to a journal under HomeSec's work folder (`mqtt_journal.py`) before
`send()` returns, so the ones still waiting when the process dies go out after the restart.

With `discovery: true` it also speaks Home Assistant's MQTT discovery (`ha_discovery.py` says
what is published): the announcement and `online` on every connect, `offline` as the last will
and on a clean close, and entity state and the snapshot next to each alert. Retained entity
state in the outbox is a latest value: a newer message on the same topic replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import ssl
import string
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import AfterValidator, Field, FilePath, model_validator

from homesec.backoff import Backoff, Jitter
from homesec.errors import CheckFailed
from homesec.interfaces import NotifierConfig, SelfCheck
from homesec.models.alert import Alert, DetectionEvent, SystemAlert
from homesec.models.enums import PluginType
from homesec.models.env import PlainEnv, SecretEnv
from homesec.models.health import HealthReport
from homesec.plugins.notifiers.ha_discovery import (
    HAMessage,
    HomeAssistantDiscovery,
    HomeAssistantOptions,
)
from homesec.plugins.notifiers.mqtt_journal import JournalEntry, OutboxJournal
from homesec.plugins.registry import plugin

logger = logging.getLogger(__name__)

# Telemetry `event_type` values of this notifier.
EVENT_CONNECTED = "mqtt_connected"
EVENT_RECONNECTED = "mqtt_reconnected"
EVENT_UNAVAILABLE = "mqtt_unavailable"
EVENT_MESSAGE_DROPPED = "mqtt_message_dropped"
EVENT_UNDELIVERED_ON_CLOSE = "mqtt_undelivered_on_close"
EVENT_UNEXPECTED_ERROR = "mqtt_unexpected_error"
EVENT_RESUMED = "mqtt_resumed_from_journal"
EVENT_JOURNAL_FAILED = "mqtt_journal_failed"

T = TypeVar("T")

_TEMPLATE_FIELD = "camera_name"
# A graceful DISCONNECT to a live broker takes milliseconds; a silent one is not waited for.
_DISCONNECT_GRACE_S = 1.0


def _check_topic(topic: str) -> str:
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise ValueError(f"not a valid MQTT topic to publish to: {topic!r}")
    return topic


def _check_topic_template(template: str) -> str:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid topic template {template!r}: {exc}") from None
    for _, field, spec, conversion in parts:
        if field is not None and (field != _TEMPLATE_FIELD or spec or conversion):
            raise ValueError(
                f"topic template {template!r} may only use the placeholder {{{_TEMPLATE_FIELD}}}"
            )
    _check_topic(template.format(camera_name="camera"))
    return template


class MQTTNotifierConfig(NotifierConfig, HomeAssistantOptions):
    """Broker address, credentials (as env var names), topics, delivery bounds, HA discovery."""

    name: str = Field(default="mqtt", min_length=1, description="Name of this sink in logs")
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
    topic_template: Annotated[str, AfterValidator(_check_topic_template)] = Field(
        default="homecam/alerts/{camera_name}",
        description="Topic of clip alerts; may use {camera_name} and nothing else",
    )
    detection_topic_template: Annotated[str, AfterValidator(_check_topic_template)] = Field(
        default="homecam/detections/{camera_name}",
        description="Topic of early detection events (sink option on_detection: true)",
    )
    system_topic: Annotated[str, AfterValidator(_check_topic)] = Field(
        default="homecam/system/errors", description="Topic of system alerts"
    )
    qos: Literal[0, 1, 2] = Field(default=1, description="MQTT QoS of every message")
    retain: bool = Field(default=False, description="Ask the broker to retain the messages")
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
    max_pending: int = Field(
        default=1000, ge=1, description="Messages kept while the broker is down; oldest dropped"
    )
    close_timeout_s: float = Field(
        default=5.0, ge=0, description="Time close() gives queued messages to be delivered"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MQTTNotifierConfig:
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


class _Lifecycle(StrEnum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    payload: str | bytes
    clip_id: str | None
    camera_name: str | None
    retain: bool = False
    # A latest value (HA entity state): a newer message on the same topic replaces it.
    supersedable: bool = False
    journal_id: int | None = None


@plugin(PluginType.NOTIFIER, "mqtt", config=MQTTNotifierConfig)
class MQTTNotifier:
    """Publishes alerts from a bounded outbox over one self-healing broker connection."""

    def __init__(self, config: MQTTNotifierConfig) -> None:
        self._config = config
        self._username = config.username_env.value if config.username_env else None
        self._password = (
            config.password_env.value.get_secret_value() if config.password_env else None
        )
        self._tls_context = _tls_context(config)
        self._outbox: deque[_Outgoing] = deque()
        self._has_mail = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._lifecycle = _Lifecycle.NEW
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._in_outage = False
        self._dropped = 0
        self._delivered = 0
        self._home_assistant = (
            HomeAssistantDiscovery(config, config.camera_names, self._enqueue_ha)
            if config.discovery
            else None
        )
        self._journal: OutboxJournal | None = None
        self._journal_thread = ThreadPoolExecutor(1, thread_name_prefix=f"mqtt-journal:{self.name}")

    @classmethod
    def create(cls, config: MQTTNotifierConfig) -> MQTTNotifier:
        return cls(config)

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def pending(self) -> int:
        """Messages waiting in the outbox (including one being published)."""
        return len(self._outbox)

    @property
    def dropped(self) -> int:
        """Messages dropped because the outbox was full."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Messages the broker has acknowledged (QoS 1/2) or accepted (QoS 0)."""
        return self._delivered

    async def start(self) -> None:
        """Start the background connection task and return at once (the broker may be down)."""
        match self._lifecycle:
            case _Lifecycle.RUNNING:
                return
            case _Lifecycle.CLOSING | _Lifecycle.CLOSED:
                raise RuntimeError(f"MQTT notifier {self.name!r} is closed")
        self._lifecycle = _Lifecycle.RUNNING
        await self._resume_from_journal()
        if self._home_assistant is not None:
            for message in self._home_assistant.initial_states():
                self._enqueue_ha(message)
        self._task = asyncio.create_task(self._run(), name=f"mqtt-notifier:{self.name}")

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        """Queue the alert; with discovery, also the HA entity state and the snapshot."""
        topic = self._config.topic_template.format(camera_name=alert.camera_name)
        payload = alert.model_dump_json()
        retain = self._config.retain
        await self._enqueue_durable(
            _Outgoing(topic, payload, alert.clip_id, alert.camera_name, retain)
        )
        if self._home_assistant is not None:
            for message in await self._home_assistant.alert_messages(alert, snapshot):
                self._enqueue_ha(message, alert)

    async def send_detection(self, event: DetectionEvent, snapshot: Path | None = None) -> None:
        """Queue the early detection event on its own topic (same dedupe_key as the alert)."""
        topic = self._config.detection_topic_template.format(camera_name=event.camera_name)
        payload = event.model_dump_json()
        await self._enqueue_durable(
            _Outgoing(topic, payload, event.clip_id, event.camera_name, False)
        )

    async def send_system(self, alert: SystemAlert) -> None:
        """Queue the system alert; with discovery, also HomeSec's System alert event."""
        topic, retain = self._config.system_topic, self._config.retain
        payload = alert.model_dump_json()
        await self._enqueue_durable(
            _Outgoing(topic, payload, alert.clip_id, alert.camera_name, retain)
        )
        if self._home_assistant is not None:
            for message in self._home_assistant.system_alert_messages(alert):
                self._enqueue_ha(message)

    async def publish_health(self, report: HealthReport) -> None:
        """Feed the HomeSec device's Health entity (a no-op without discovery)."""
        if self._home_assistant is not None:
            self._enqueue_ha(self._home_assistant.health_message(report))

    async def ping(self) -> bool:
        return self._connected

    def self_checks(self) -> list[SelfCheck]:
        return [SelfCheck("broker login", self._check_login)]

    async def _check_login(self, timeout_s: float) -> str:
        """Connect with the configured address, TLS and credentials, then disconnect.

        Under a client id of its own: the configured one would take the session of a
        HomeSec running with this config off the broker.
        """
        config = self._config
        where = f"{config.host}:{config.port}"
        client = aiomqtt.Client(
            hostname=config.host,
            port=config.port,
            username=self._username,
            password=self._password,
            timeout=timeout_s,
            tls_context=self._tls_context,
        )
        try:
            async with client:
                pass
        except MqttConnectError as exc:
            named = [env.name for env in (config.username_env, config.password_env) if env]
            login = (
                f"the user and password in {' and '.join(f'${name}' for name in named)}"
                if named
                else "username_env and password_env (the broker wants a login)"
            )
            message = f"the broker at {where} refused the login ({exc}): check {login}"
            raise CheckFailed(message, exc) from exc
        except aiomqtt.MqttError as exc:
            raise CheckFailed(
                f"cannot connect to the broker at {where} ({exc}): is it running? check host, "
                "port and tls",
                exc,
            ) from exc
        return f"logged in at {where}" + (" with TLS" if config.tls else "")

    async def close(self) -> None:
        """Give queued messages `close_timeout_s` to go out, then disconnect. Never hangs."""
        if self._lifecycle in (_Lifecycle.CLOSING, _Lifecycle.CLOSED):
            return
        if self._home_assistant is not None:
            self._home_assistant.close()
            if self._connected:
                # A clean DISCONNECT discards the last will: say `offline` ourselves.
                self._enqueue_ha(self._home_assistant.offline())
        self._lifecycle = _Lifecycle.CLOSING
        if self._connected and self._outbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self._config.close_timeout_s)
        await self._stop_task()
        self._lifecycle = _Lifecycle.CLOSED
        if self._journal is not None:
            await self._in_journal(self._journal.close)
        self._journal_thread.shutdown(wait=True)
        if self._outbox:
            logger.warning(
                "MQTT notifier %s closed with %d undelivered messages (journaled ones go out"
                " after the next start)",
                self.name,
                len(self._outbox),
                extra=self._extra(EVENT_UNDELIVERED_ON_CLOSE, pending=len(self._outbox)),
            )

    def _enqueue_ha(self, message: HAMessage, alert: Alert | None = None) -> None:
        clip_id, camera = (alert.clip_id, alert.camera_name) if alert else (None, None)
        retain = message.retain
        self._enqueue(
            _Outgoing(message.topic, message.payload, clip_id, camera, retain, supersedable=retain)
        )

    def _enqueue(self, message: _Outgoing) -> None:
        if self._lifecycle in (_Lifecycle.CLOSING, _Lifecycle.CLOSED):
            raise RuntimeError(f"MQTT notifier {self.name!r} is closed")
        if message.supersedable:
            # Only the latest value matters (HA entity state): a stale snapshot queued during
            # an outage must not take an alert's place in the bounded outbox.
            stale = [m for m in self._outbox if m.supersedable and m.topic == message.topic]
            for old in stale:
                self._outbox.remove(old)
                self._forget(old)
        if len(self._outbox) >= self._config.max_pending:
            self._drop_oldest()
        self._outbox.append(message)
        self._drained.clear()
        self._has_mail.set()

    async def _enqueue_durable(self, message: _Outgoing) -> None:
        """Queue a message that must survive a crash: journal it first."""
        journal = self._journal
        if journal is not None:
            payload = message.payload
            data = payload.encode() if isinstance(payload, str) else payload
            try:
                entry_id = await self._in_journal(
                    lambda: journal.add(
                        message.topic,
                        data,
                        retain=message.retain,
                        clip_id=message.clip_id,
                        camera_name=message.camera_name,
                    )
                )
            except sqlite3.Error as exc:
                # Delivery comes first: the message still goes out unless the process dies.
                logger.error(
                    "MQTT notifier %s cannot journal a message (%s): kept in memory only",
                    self.name,
                    exc,
                    extra=self._extra(EVENT_JOURNAL_FAILED, clip_id=message.clip_id),
                )
            else:
                message = replace(message, journal_id=entry_id)
        self._enqueue(message)

    async def _resume_from_journal(self) -> None:
        path = self._journal_path()
        if path is None:
            return
        try:
            self._journal = journal = await self._in_journal(lambda: OutboxJournal(path))
            entries = await self._in_journal(journal.pending)
        except sqlite3.Error as exc:
            logger.error(
                "MQTT notifier %s: journal %s unusable (%s); alerts queued in memory only",
                self.name,
                path,
                exc,
                extra=self._extra(EVENT_JOURNAL_FAILED),
            )
            self._journal = None
            return
        if entries:
            logger.warning(
                "MQTT notifier %s: %d messages from before the last stop go out first",
                self.name,
                len(entries),
                extra=self._extra(EVENT_RESUMED, pending=len(entries)),
            )
        for entry in entries:
            self._enqueue(_from_journal(entry))

    def _journal_path(self) -> Path | None:
        work_dir = self._config.work_dir
        if work_dir is None:
            return None
        # One journal per broker and sink: a second sink must not publish the first's alerts.
        key = f"{self.name}-{self._config.host}-{self._config.port}"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return work_dir / "mqtt" / f"{safe}.sqlite3"

    async def _in_journal(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._journal_thread, call)

    def _forget(self, message: _Outgoing) -> None:
        """Take a message out of the journal (in order, on the journal thread; not awaited)."""
        if self._journal is not None and message.journal_id is not None:
            self._journal_thread.submit(self._journal.remove, message.journal_id)

    def _drop_oldest(self) -> None:
        oldest = self._outbox.popleft()
        self._forget(oldest)
        self._dropped += 1
        logger.error(
            "MQTT notifier %s: outbox full (%d), dropped the oldest message on %s (%d dropped)",
            self.name,
            self._config.max_pending,
            oldest.topic,
            self._dropped,
            extra=self._extra(
                EVENT_MESSAGE_DROPPED,
                clip_id=oldest.clip_id,
                camera_name=oldest.camera_name,
                dropped=self._dropped,
            ),
        )

    async def _run(self) -> None:
        """Connect, publish, and reconnect with backoff, until close() cancels it."""
        # Jittered: many clients do not reconnect in lockstep after a broker restart.
        backoff = Backoff(
            self._config.reconnect_min_s, self._config.reconnect_max_s, Jitter.UPPER_HALF
        )
        while True:
            try:
                async with self._new_client() as client:
                    backoff.reset()
                    self._on_connected()
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                self._on_unavailable(exc)
            except Exception:
                # A bug here must not stop delivery for good: log it and reconnect.
                self._connected = False
                logger.exception(
                    "MQTT notifier %s: unexpected error",
                    self.name,
                    extra=self._extra(EVENT_UNEXPECTED_ERROR),
                )
            await asyncio.sleep(backoff.next_s())

    def _new_client(self) -> aiomqtt.Client:
        config = self._config
        return aiomqtt.Client(
            hostname=config.host,
            port=config.port,
            identifier=config.client_id,
            username=self._username,
            password=self._password,
            keepalive=config.keepalive_s,
            timeout=config.timeout_s,
            tls_context=self._tls_context,
            will=self._will(),
        )

    def _will(self) -> aiomqtt.Will | None:
        if self._home_assistant is None:
            return None
        will = self._home_assistant.will()
        return aiomqtt.Will(will.topic, will.payload, qos=self._config.qos, retain=will.retain)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Publish until the connection breaks; raises the MqttError that broke it."""
        if self._home_assistant is not None:
            for topic in self._home_assistant.subscriptions():
                await client.subscribe(topic, qos=1)
            await self._publish_now(client, self._home_assistant.announcement())
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._watch_connection(client), name=f"mqtt-watch:{self.name}")
                tasks.create_task(self._publish_outbox(client), name=f"mqtt-publish:{self.name}")
        except* aiomqtt.MqttError as errors:
            raise errors.exceptions[0] from None

    async def _publish_outbox(self, client: aiomqtt.Client) -> None:
        while True:
            if not self._outbox:
                self._drained.set()
                self._has_mail.clear()
                await self._has_mail.wait()
                continue
            head = self._outbox[0]
            # On failure the message stays at the head and goes out again after the reconnect.
            await client.publish(head.topic, head.payload, qos=self._config.qos, retain=head.retain)
            # The head may have been dropped (or superseded) while we waited for the ack.
            if self._outbox and self._outbox[0] is head:
                self._outbox.popleft()
                self._forget(head)
            self._delivered += 1

    async def _watch_connection(self, client: aiomqtt.Client) -> None:
        # Only discovery subscribes; otherwise the iterator just ends, raising, on disconnect.
        async for message in client.messages:
            if self._home_assistant is not None:
                replies = self._home_assistant.on_message(str(message.topic), message.payload)
                await self._publish_now(client, replies)
        raise aiomqtt.MqttError("connection closed")

    async def _publish_now(self, client: aiomqtt.Client, messages: list[HAMessage]) -> None:
        """Publish outside the outbox: discovery is re-sent on every connect anyway."""
        for message in messages:
            await client.publish(
                message.topic, message.payload, qos=self._config.qos, retain=message.retain
            )

    def _on_connected(self) -> None:
        self._connected = True
        broker = f"{self._config.host}:{self._config.port}"
        if self._in_outage:
            self._in_outage = False
            logger.info(
                "MQTT notifier %s reconnected to %s (%d pending)",
                self.name,
                broker,
                len(self._outbox),
                extra=self._extra(EVENT_RECONNECTED, pending=len(self._outbox)),
            )
        else:
            logger.info(
                "MQTT notifier %s connected to %s",
                self.name,
                broker,
                extra=self._extra(EVENT_CONNECTED),
            )

    def _on_unavailable(self, exc: aiomqtt.MqttError) -> None:
        was_connected, self._connected = self._connected, False
        if self._in_outage:
            logger.debug("MQTT notifier %s: still unavailable: %s", self.name, exc)
            return
        self._in_outage = True
        # A refusal (bad credentials, not authorised) will not heal by itself: say so louder.
        level = logging.ERROR if isinstance(exc, MqttConnectError) else logging.WARNING
        what = "lost the connection to" if was_connected else "cannot connect to"
        logger.log(
            level,
            "MQTT notifier %s %s %s:%d: %s; retrying in the background (%d pending)",
            self.name,
            what,
            self._config.host,
            self._config.port,
            exc,
            len(self._outbox),
            extra=self._extra(EVENT_UNAVAILABLE, pending=len(self._outbox)),
        )

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        _, still_running = await asyncio.wait([task], timeout=_DISCONNECT_GRACE_S)
        if still_running:
            # A second cancel interrupts a graceful disconnect waiting on a silent broker.
            task.cancel()
            await asyncio.wait([task])
        self._connected = False

    def _extra(self, event_type: str, **fields: Any) -> dict[str, Any]:
        return {"event_type": event_type, "notifier": self.name, **fields}


def _tls_context(config: MQTTNotifierConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    context = ssl.create_default_context(cafile=config.ca_file)
    if config.certfile is not None:
        context.load_cert_chain(config.certfile, config.keyfile)
    if config.tls_insecure:
        context.check_hostname = False
    return context


def _from_journal(entry: JournalEntry) -> _Outgoing:
    return _Outgoing(
        entry.topic,
        entry.payload,
        entry.clip_id,
        entry.camera_name,
        entry.retain,
        journal_id=entry.id,
    )
