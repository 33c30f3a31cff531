"""`mqtt` notifier: alerts to Home Assistant through an MQTT broker (Mosquitto).

Clip alerts go to `homecam/alerts/{camera_name}` as the JSON of `Alert`, QoS 1, not retained;
system alerts go to `homecam/system/errors` as the JSON of `SystemAlert` (SPEC.md section 3).

`send()` never waits on the broker: it puts the message in a bounded outbox (`mqtt_outbox.py`,
journaled on disk so alerts queued during an outage survive a crash) and returns. One
background connection task publishes the outbox in order, waiting for the broker's ack of each
message, and reconnects forever with exponential backoff and jitter. A broker outage therefore
delays alerts instead of losing them. Delivery is at least once: a message whose ack was lost is
published again after the reconnect.

When HomeSec has modes it shows the mode and the cameras' alert switches and takes changes
on command topics (`mqtt_control.py`); it shows the clips waiting for review in any case.
With `discovery: true` it also speaks Home Assistant's MQTT discovery (`ha_discovery.py` says
what is published): the announcement and `online` on every connect, `offline` as the last will
and on a clean close, and entity state and the snapshot next to each alert.
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import AfterValidator, Field

from homesec.backoff import Backoff, Jitter
from homesec.interfaces import ModeControl, NotifierConfig, SelfCheck
from homesec.models.alert import Alert, DetectionEvent, SystemAlert
from homesec.models.digest import Digest
from homesec.models.enums import PluginType
from homesec.models.health import HealthReport
from homesec.models.modes import ModeState
from homesec.plugins.mqtt_broker import Broker, BrokerSettings
from homesec.plugins.notifiers.ha_discovery import (
    HomeAssistantDiscovery,
    HomeAssistantOptions,
    check_topic,
)
from homesec.plugins.notifiers.mqtt_control import ControlTopics, RemoteControl
from homesec.plugins.notifiers.mqtt_outbox import Outbox, OutboxMessage, log_extra
from homesec.plugins.registry import plugin

logger = logging.getLogger(__name__)

# Telemetry `event_type` values of this notifier.
EVENT_CONNECTED = "mqtt_connected"
EVENT_RECONNECTED = "mqtt_reconnected"
EVENT_UNAVAILABLE = "mqtt_unavailable"
EVENT_UNDELIVERED_ON_CLOSE = "mqtt_undelivered_on_close"
EVENT_UNEXPECTED_ERROR = "mqtt_unexpected_error"

_TEMPLATE_FIELD = "camera_name"
# A graceful DISCONNECT to a live broker takes milliseconds; a silent one is not waited for.
_DISCONNECT_GRACE_S = 1.0


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
    check_topic(template.format(camera_name="camera"))
    return template


class MQTTNotifierConfig(NotifierConfig, BrokerSettings, HomeAssistantOptions):
    """Broker address, credentials (as env var names), topics, delivery bounds, HA discovery."""

    name: str = Field(default="mqtt", min_length=1, description="Name of this sink in logs")
    topic_template: Annotated[str, AfterValidator(_check_topic_template)] = Field(
        default="homecam/alerts/{camera_name}",
        description="Topic of clip alerts; may use {camera_name} and nothing else",
    )
    detection_topic_template: Annotated[str, AfterValidator(_check_topic_template)] = Field(
        default="homecam/detections/{camera_name}",
        description="Topic of early detection events (sink option on_detection: true)",
    )
    system_topic: Annotated[str, AfterValidator(check_topic)] = Field(
        default="homecam/system/errors", description="Topic of system alerts"
    )
    qos: Literal[0, 1, 2] = Field(default=1, description="MQTT QoS of every message")
    retain: bool = Field(default=False, description="Ask the broker to retain the messages")
    max_pending: int = Field(
        default=1000, ge=1, description="Messages kept while the broker is down; oldest dropped"
    )
    close_timeout_s: float = Field(
        default=5.0, ge=0, description="Time given at shutdown to deliver queued messages"
    )


class _Lifecycle(StrEnum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


@plugin(PluginType.NOTIFIER, "mqtt", config=MQTTNotifierConfig)
class MQTTNotifier:
    """Publishes alerts from a bounded outbox over one self-healing broker connection."""

    def __init__(self, config: MQTTNotifierConfig) -> None:
        self._config = config
        self._broker = Broker(config)
        self._outbox = Outbox(
            name=config.name, max_pending=config.max_pending, journal_path=_journal_path(config)
        )
        self._lifecycle = _Lifecycle.NEW
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._in_outage = False
        self._home_assistant = (
            HomeAssistantDiscovery(
                config, config.camera_names, self._enqueue_ha, digest=config.digest
            )
            if config.discovery
            else None
        )
        self._control_topics = ControlTopics(config.state_topic_prefix)
        self._remote: RemoteControl | None = None

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
        return self._outbox.dropped

    def follow_modes(self, control: ModeControl) -> None:
        """Show the mode and the alert switches, and take commands (before `start`)."""
        self._remote = RemoteControl(self._control_topics, control)
        control.listen(self._mode_changed)
        if self._home_assistant is not None:
            self._home_assistant.show_modes(control.names)

    async def send_digest(self, digest: Digest) -> None:
        """The digest, retained on `{state_topic_prefix}/digest` (HA's Digest sensor)."""
        self._enqueue_ha(
            OutboxMessage(
                topic=self._control_topics.digest,
                payload=digest.model_dump_json(),
                retain=True,
                supersedable=True,
            )
        )

    async def publish_reviews(self, waiting: Mapping[str, int]) -> None:
        """Each camera's clips waiting for review (its HA binary sensor), retained."""
        for message in self._control_topics.review_messages(waiting):
            self._enqueue_ha(message)

    async def start(self) -> None:
        """Start the background connection task and return at once (the broker may be down)."""
        match self._lifecycle:
            case _Lifecycle.RUNNING:
                return
            case _Lifecycle.CLOSED:
                raise RuntimeError(f"MQTT notifier {self.name!r} is closed")
        self._lifecycle = _Lifecycle.RUNNING
        await self._outbox.start()
        if self._home_assistant is not None:
            for message in self._home_assistant.initial_states():
                self._enqueue_ha(message)
        if self._remote is not None:
            await self._mode_changed(self._remote.state)
        self._task = asyncio.create_task(self._run(), name=f"mqtt-notifier:{self.name}")

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        """Queue the alert; with discovery, also the HA entity state and the snapshot."""
        topic = self._config.topic_template.format(camera_name=alert.camera_name)
        await self._enqueue_durable(topic, alert, retain=self._config.retain)
        if self._home_assistant is not None:
            for message in await self._home_assistant.alert_messages(alert, snapshot):
                self._enqueue_ha(message)

    async def send_detection(self, event: DetectionEvent, snapshot: Path | None = None) -> None:
        """Queue the early detection event on its own topic (same dedupe_key as the alert)."""
        topic = self._config.detection_topic_template.format(camera_name=event.camera_name)
        await self._enqueue_durable(topic, event, retain=False)

    async def send_system(self, alert: SystemAlert) -> None:
        """Queue the system alert; with discovery, also HomeSec's System alert event."""
        await self._enqueue_durable(self._config.system_topic, alert, retain=self._config.retain)
        if self._home_assistant is not None:
            self._enqueue_ha(self._home_assistant.system_alert_message(alert))

    async def publish_health(self, report: HealthReport) -> None:
        """Feed the HomeSec device's Health entity (a no-op without discovery)."""
        if self._home_assistant is not None:
            self._enqueue_ha(self._home_assistant.health_message(report))

    async def ping(self) -> bool:
        return self._connected

    def self_checks(self) -> list[SelfCheck]:
        return [SelfCheck("broker login", self._broker.check_login)]

    async def aclose(self) -> None:
        """Give queued messages `close_timeout_s` to go out, then disconnect. Never hangs."""
        if self._lifecycle is _Lifecycle.CLOSED:
            return
        if self._home_assistant is not None:
            self._home_assistant.close()
            if self._connected:
                # A clean DISCONNECT discards the last will: say `offline` ourselves.
                self._enqueue_ha(self._home_assistant.offline())
        self._lifecycle = _Lifecycle.CLOSED
        if self._connected and self._outbox:
            await self._outbox.wait_drained(self._config.close_timeout_s)
        await self._stop_task()
        await self._outbox.aclose()
        if self._outbox:
            logger.warning(
                "MQTT notifier %s closed with %d undelivered messages (journaled ones go out"
                " after the next start)",
                self.name,
                len(self._outbox),
                extra=log_extra(self.name, EVENT_UNDELIVERED_ON_CLOSE, pending=len(self._outbox)),
            )

    async def _mode_changed(self, state: ModeState) -> None:
        if self._remote is not None:
            for message in self._remote.state_messages(state):
                self._enqueue_ha(message)

    def _enqueue_ha(self, message: OutboxMessage) -> None:
        self._refuse_when_closed()
        self._outbox.put(message)

    async def _enqueue_durable(
        self, topic: str, item: Alert | DetectionEvent | SystemAlert, *, retain: bool
    ) -> None:
        self._refuse_when_closed()
        await self._outbox.put_durable(
            OutboxMessage(
                topic=topic,
                payload=item.model_dump_json(),
                retain=retain,
                clip_id=item.clip_id,
                camera_name=item.camera_name,
            )
        )

    def _refuse_when_closed(self) -> None:
        if self._lifecycle is _Lifecycle.CLOSED:
            raise RuntimeError(f"MQTT notifier {self.name!r} is closed")

    async def _run(self) -> None:
        """Connect, publish, and reconnect with backoff, until aclose() cancels it."""
        # Jittered: many clients do not reconnect in lockstep after a broker restart.
        backoff = Backoff(
            self._config.reconnect_min_s, self._config.reconnect_max_s, Jitter.UPPER_HALF
        )
        while True:
            try:
                async with self._broker.client(will=self._will()) as client:
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
                    extra=log_extra(self.name, EVENT_UNEXPECTED_ERROR),
                )
            await asyncio.sleep(backoff.next_s())

    def _will(self) -> aiomqtt.Will | None:
        if self._home_assistant is None:
            return None
        will = self._home_assistant.offline()
        return aiomqtt.Will(will.topic, will.payload, qos=self._config.qos, retain=will.retain)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Publish until the connection breaks; raises the MqttError that broke it."""
        subscriptions = self._control_topics.subscriptions() if self._remote else []
        if self._home_assistant is not None:
            subscriptions += self._home_assistant.subscriptions()
        for topic in subscriptions:
            await client.subscribe(topic, qos=1)
        if self._home_assistant is not None:
            await self._publish_now(client, self._home_assistant.announcement())
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._watch_connection(client), name=f"mqtt-watch:{self.name}")
                tasks.create_task(self._publish_outbox(client), name=f"mqtt-publish:{self.name}")
        except* aiomqtt.MqttError as errors:
            raise errors.exceptions[0] from None

    async def _publish_outbox(self, client: aiomqtt.Client) -> None:
        while True:
            head = await self._outbox.head()
            # On failure the message stays at the head and goes out again after the reconnect.
            await client.publish(head.topic, head.payload, qos=self._config.qos, retain=head.retain)
            self._outbox.mark_delivered(head)

    async def _watch_connection(self, client: aiomqtt.Client) -> None:
        # Without subscriptions the iterator just ends, raising, on disconnect.
        async for message in client.messages:
            await self._publish_now(client, await self._replies(message))
        raise aiomqtt.MqttError("connection closed")

    async def _replies(self, message: aiomqtt.Message) -> list[OutboxMessage]:
        """What to publish in reply to a message; a bad one is logged, never fatal: anyone
        on the broker may publish, and an error here would cost the connection (alerts)."""
        topic = str(message.topic)
        try:
            if self._remote is not None and self._remote.handles(topic):
                return await self._remote.command(topic, message.payload, message.retain)
            if self._home_assistant is not None:
                return self._home_assistant.on_message(topic, message.payload)
        except Exception:
            logger.exception(
                "MQTT notifier %s: the message on %s was not handled", self.name, topic
            )
        return []

    async def _publish_now(self, client: aiomqtt.Client, messages: list[OutboxMessage]) -> None:
        """Publish outside the outbox: discovery is re-sent on every connect anyway."""
        for message in messages:
            await client.publish(
                message.topic, message.payload, qos=self._config.qos, retain=message.retain
            )

    def _on_connected(self) -> None:
        self._connected = True
        broker = self._config.where
        if self._in_outage:
            self._in_outage = False
            logger.info(
                "MQTT notifier %s reconnected to %s (%d pending)",
                self.name,
                broker,
                len(self._outbox),
                extra=log_extra(self.name, EVENT_RECONNECTED, pending=len(self._outbox)),
            )
        else:
            logger.info(
                "MQTT notifier %s connected to %s",
                self.name,
                broker,
                extra=log_extra(self.name, EVENT_CONNECTED),
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
            "MQTT notifier %s %s %s: %s; retrying in the background (%d pending)",
            self.name,
            what,
            self._config.where,
            exc,
            len(self._outbox),
            extra=log_extra(self.name, EVENT_UNAVAILABLE, pending=len(self._outbox)),
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


def _journal_path(config: MQTTNotifierConfig) -> Path | None:
    if config.work_dir is None:
        return None
    # One journal per broker and sink: a second sink must not publish the first's alerts.
    key = f"{config.name}-{config.host}-{config.port}"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return config.work_dir / "mqtt" / f"{safe}.sqlite3"
