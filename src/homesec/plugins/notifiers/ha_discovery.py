"""Home Assistant MQTT discovery for the `mqtt` notifier: what to publish, never how.

With `discovery: true` the notifier announces, retained, on
`{discovery_prefix}/{component}/{node_id}/{object_id}/config` (HA's documented schema):

- a "HomeSec" device: `binary_sensor` Status (connectivity, fed by the availability topic),
  `event` System alert (fires on every system alert, its JSON as attributes), `sensor`
  Health (fed by `publish_health`), when HomeSec has modes `select` Mode, and when the sink
  takes the digest `sensor` Digest (its text; counts and notable clips as attributes);
- one device per configured camera: `event` Alert (fires on every alert, the alert payload as
  attributes), `binary_sensor` Alert active (on for `alert_active_s` after an alert),
  `sensor`s Risk level, Activity, Summary and Last alert, `camera` Snapshot (the JPEG),
  `binary_sensor` Needs review (clips wait for a person's review, their count as attribute)
  and, when HomeSec has modes, `switch` Alerts (`mqtt_control.py` has their topics).

Entity state lives under `{state_topic_prefix}`: `status` (`online`/`offline`, retained, also
the MQTT last will), `health`, `system_alert`, and per camera `alert` (the last alert,
retained), `active`, `event` (not retained: an event must not fire again on reconnect) and
`snapshot`. Camera entities are unavailable while HomeSec is offline. unique_ids are
`{node_id}_{object_id}`, stable across restarts. The notifier's own alert topic and payload are
not touched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from homesec import __version__
from homesec.models.alert import Alert, SystemAlert
from homesec.models.health import HealthReport
from homesec.plugins.notifiers.mqtt_control import OFF, ON, ControlTopics
from homesec.plugins.notifiers.mqtt_outbox import OutboxMessage
from homesec.plugins.notifiers.templates import read_snapshot

ONLINE = "online"
OFFLINE = "offline"
ALERT_EVENT_TYPE = "alert"
SYSTEM_ALERT_EVENT_TYPE = "system_alert"
# Home Assistant publishes its birth message here (under the discovery prefix).
_HA_STATUS = "status"
# HA refuses sensor states longer than this.
_MAX_STATE_LENGTH = 255


def check_topic(topic: str) -> str:
    if not topic or any(char in topic for char in "+#\0"):
        raise ValueError(
            f"not a valid MQTT topic to publish to: {topic!r} (it must be non-empty and must not"
            " contain '+', '#' or NUL)"
        )
    return topic


def _check_prefix(prefix: str) -> str:
    if prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"topic prefix must have no leading or trailing '/': {prefix!r}")
    return check_topic(prefix)


TopicPrefix = Annotated[str, AfterValidator(_check_prefix)]


class HomeAssistantOptions(BaseModel):
    """Fields of the mqtt notifier's config that turn Home Assistant discovery on."""

    model_config = ConfigDict(extra="forbid")

    discovery: bool = Field(
        default=False,
        description="Announce HomeSec and one device per camera to Home Assistant (MQTT discovery)",
    )
    discovery_prefix: TopicPrefix = Field(
        default="homeassistant", description="Home Assistant's MQTT discovery prefix"
    )
    state_topic_prefix: TopicPrefix = Field(
        default="homecam/ha",
        description="Root of the entity state, snapshot and availability topics",
    )
    node_id: str = Field(
        default="homesec",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="This HomeSec's id in discovery topics and unique_ids; one per instance",
    )
    alert_active_s: int = Field(
        default=60, ge=1, description="Seconds a camera's 'Alert active' sensor stays on"
    )


def _message(
    topic: str, payload: str | bytes, *, retain: bool, about: Alert | None = None
) -> OutboxMessage:
    """A retained message is a latest value: a newer one on its topic supersedes it."""
    return OutboxMessage(
        topic=topic,
        payload=payload,
        retain=retain,
        supersedable=retain,
        clip_id=about.clip_id if about else None,
        camera_name=about.camera_name if about else None,
    )


class HomeAssistantDiscovery:
    """Builds discovery configs and entity state messages; schedules 'Alert active' off.

    `publish` takes messages produced later than the call that caused them (the off switch).
    """

    def __init__(
        self,
        options: HomeAssistantOptions,
        camera_names: Iterable[str],
        publish: Callable[[OutboxMessage], None],
        *,
        digest: bool = False,
    ) -> None:
        self._options = options
        self._cameras = list(dict.fromkeys(camera_names))
        self._publish = publish
        self._off_timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False
        self._status_topic = self._topic(_HA_STATUS)
        self._control = ControlTopics(options.state_topic_prefix)
        self._configs = dict(self._homesec_configs())
        if digest:
            self._configs.update([self._digest_config()])
        for camera in self._cameras:
            self._configs.update(self._camera_configs(camera))

    def show_modes(self, names: list[str]) -> None:
        """Announce the Mode select and each camera's Alerts switch too."""
        self._configs.update(self._mode_configs(names))

    def offline(self) -> OutboxMessage:
        """The last will, and published on a clean close (the broker drops the will then)."""
        return _message(self._status_topic, OFFLINE, retain=True)

    def subscriptions(self) -> list[str]:
        """HA's birth topic (re-announce on HA restart) and our own configs (prune stale)."""
        prefix = self._options.discovery_prefix
        return [f"{prefix}/{_HA_STATUS}", f"{prefix}/+/{self._options.node_id}/+/config"]

    def announcement(self) -> list[OutboxMessage]:
        """Every discovery config, then `online`: sent on each (re)connect."""
        configs = [
            _message(topic, json.dumps(payload), retain=True)
            for topic, payload in self._configs.items()
        ]
        return [*configs, _message(self._status_topic, ONLINE, retain=True)]

    def initial_states(self) -> list[OutboxMessage]:
        """No alert is active when HomeSec starts."""
        return [self._alert_off(camera) for camera in self._cameras]

    def on_message(self, topic: str, payload: object) -> list[OutboxMessage]:
        """Replies to a message on a subscribed topic."""
        if topic == f"{self._options.discovery_prefix}/{_HA_STATUS}":
            # HA restarted: announce again, as its discovery documentation asks.
            # Anyone on the broker may publish here: bytes that are not UTF-8 are no birth.
            if isinstance(payload, bytes | bytearray):
                payload = payload.decode(errors="replace")
            return self.announcement() if payload == ONLINE else []
        if payload and topic not in self._configs:
            # A config of ours for an entity that no longer exists (camera removed or renamed):
            # an empty retained config removes the entity from HA.
            return [_message(topic, b"", retain=True)]
        return []

    async def alert_messages(self, alert: Alert, snapshot: Path | None) -> list[OutboxMessage]:
        """State for one alert, snapshot first so an automation fired by the event sees it."""
        camera = alert.camera_name
        payload = alert.model_dump(mode="json")

        def state(leaf: str, value: str | bytes, retain: bool = True) -> OutboxMessage:
            return _message(self._camera_topic(camera, leaf), value, retain=retain, about=alert)

        image = await read_snapshot(snapshot, alert)
        messages = [] if image is None else [state("snapshot", image)]
        messages += [
            state("alert", json.dumps(payload)),
            state("active", "ON"),
            state("event", json.dumps({"event_type": ALERT_EVENT_TYPE, **payload}), retain=False),
        ]
        self._schedule_off(camera)
        return messages

    def system_alert_message(self, alert: SystemAlert) -> OutboxMessage:
        payload = {"event_type": SYSTEM_ALERT_EVENT_TYPE, **alert.model_dump(mode="json")}
        return _message(self._topic("system_alert"), json.dumps(payload), retain=False)

    def health_message(self, report: HealthReport) -> OutboxMessage:
        return _message(self._topic("health"), report.model_dump_json(), retain=True)

    def close(self) -> None:
        """Cancel pending 'Alert active' off switches (the entities go unavailable anyway)."""
        self._closed = True
        for timer in self._off_timers.values():
            timer.cancel()
        self._off_timers.clear()

    def _schedule_off(self, camera: str) -> None:
        # HA's off_delay turns it off too, but only HomeSec's retained OFF survives HA restarts.
        if (previous := self._off_timers.pop(camera, None)) is not None:
            previous.cancel()
        if not self._closed:
            self._off_timers[camera] = asyncio.get_running_loop().call_later(
                self._options.alert_active_s, self._switch_off, camera
            )

    def _switch_off(self, camera: str) -> None:
        self._off_timers.pop(camera, None)
        self._publish(self._alert_off(camera))

    def _alert_off(self, camera: str) -> OutboxMessage:
        return _message(self._camera_topic(camera, "active"), "OFF", retain=True)

    def _homesec_device(self) -> dict[str, Any]:
        return {
            "identifiers": [self._options.node_id],
            "name": "HomeSec",
            "manufacturer": "HomeSec",
            "model": "HomeSec pipeline",
            "sw_version": __version__,
        }

    def _camera_device(self, camera: str) -> dict[str, Any]:
        return {
            "identifiers": [f"{self._options.node_id}_{camera}"],
            "name": camera.replace("_", " ").capitalize(),
            "manufacturer": "HomeSec",
            "model": "Camera",
            "via_device": self._options.node_id,
        }

    def _homesec_configs(self) -> Iterable[tuple[str, dict[str, Any]]]:
        device = self._homesec_device()
        health = self._topic("health")
        yield self._config(
            "binary_sensor",
            "status",
            device,
            name="Status",
            state_topic=self._status_topic,
            payload_on=ONLINE,
            payload_off=OFFLINE,
            device_class="connectivity",
            entity_category="diagnostic",
            available=False,  # it must show "disconnected", not "unavailable"
        )
        yield self._config(
            "event",
            "system_alert",
            device,
            name="System alert",
            state_topic=self._topic("system_alert"),
            event_types=[SYSTEM_ALERT_EVENT_TYPE],
            icon="mdi:alert-circle",
        )
        yield self._config(
            "sensor",
            "health",
            device,
            name="Health",
            state_topic=health,
            value_template="{{ value_json.status }}",
            json_attributes_topic=health,
            device_class="enum",
            options=["healthy", "degraded", "unhealthy"],
            icon="mdi:heart-pulse",
        )

    def _camera_configs(self, camera: str) -> Iterable[tuple[str, dict[str, Any]]]:
        device = self._camera_device(camera)
        last_alert = self._camera_topic(camera, "alert")

        def config(component: str, key: str, **fields: Any) -> tuple[str, dict[str, Any]]:
            return self._config(component, f"{camera}_{key}", device, **fields)

        yield config(
            "event",
            "alert",
            name="Alert",
            state_topic=self._camera_topic(camera, "event"),
            event_types=[ALERT_EVENT_TYPE],
            device_class="motion",
            icon="mdi:cctv",
        )
        yield config(
            "binary_sensor",
            "alert_active",
            name="Alert active",
            state_topic=self._camera_topic(camera, "active"),
            device_class="motion",
            off_delay=self._options.alert_active_s,
        )
        yield config(
            "sensor",
            "risk_level",
            name="Risk level",
            state_topic=last_alert,
            value_template="{{ value_json.risk_level or 'none' }}",
            device_class="enum",
            options=["none", "low", "medium", "high"],
            icon="mdi:shield-alert",
        )
        yield config(
            "sensor",
            "activity",
            name="Activity",
            state_topic=last_alert,
            value_template="{{ value_json.activity_type or 'none' }}",
            icon="mdi:walk",
        )
        yield config(
            "sensor",
            "summary",
            name="Summary",
            state_topic=last_alert,
            # Without a VLM summary the reason for the alert is the best text there is.
            value_template="{{ (value_json.summary or value_json.notify_reason)"
            f"[:{_MAX_STATE_LENGTH}] }}}}",
            json_attributes_topic=last_alert,
            icon="mdi:text",
        )
        yield config(
            "sensor",
            "last_alert",
            name="Last alert",
            state_topic=last_alert,
            value_template="{{ value_json.ts }}",
            json_attributes_topic=last_alert,
            device_class="timestamp",
        )
        yield config(
            "camera", "snapshot", name="Snapshot", topic=self._camera_topic(camera, "snapshot")
        )
        needs_review = self._control.needs_review(camera)
        yield config(
            "binary_sensor",
            "needs_review",
            name="Needs review",
            state_topic=needs_review,
            value_template=f"{{{{ '{ON}' if value_json.waiting > 0 else '{OFF}' }}}}",
            json_attributes_topic=needs_review,
            device_class="problem",
            icon="mdi:eye-check",
        )

    def _digest_config(self) -> tuple[str, dict[str, Any]]:
        return self._config(
            "sensor",
            "digest",
            self._homesec_device(),
            name="Digest",
            state_topic=self._control.digest,
            value_template=f"{{{{ value_json.text[:{_MAX_STATE_LENGTH}] }}}}",
            json_attributes_topic=self._control.digest,
            icon="mdi:newspaper-variant-outline",
        )

    def _mode_configs(self, names: list[str]) -> Iterable[tuple[str, dict[str, Any]]]:
        yield self._config(
            "select",
            "mode",
            self._homesec_device(),
            name="Mode",
            state_topic=self._control.mode,
            command_topic=self._control.mode_set,
            options=names,
            icon="mdi:home-switch",
        )
        for camera in self._cameras:
            yield self._config(
                "switch",
                f"{camera}_alerts",
                self._camera_device(camera),
                name="Alerts",
                state_topic=self._control.alerts(camera),
                command_topic=self._control.alerts_set(camera),
                payload_on=ON,
                payload_off=OFF,
                icon="mdi:bell",
            )

    def _config(
        self,
        component: str,
        object_id: str,
        device: dict[str, Any],
        *,
        available: bool = True,
        **fields: Any,
    ) -> tuple[str, dict[str, Any]]:
        node_id = self._options.node_id
        payload: dict[str, Any] = {
            "unique_id": f"{node_id}_{object_id}",
            **fields,
            "device": device,
            "origin": {"name": "HomeSec", "sw_version": __version__},
        }
        if available:
            payload |= {
                "availability_topic": self._status_topic,
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            }
        topic = f"{self._options.discovery_prefix}/{component}/{node_id}/{object_id}/config"
        return topic, payload

    def _topic(self, leaf: str) -> str:
        return f"{self._options.state_topic_prefix}/{leaf}"

    def _camera_topic(self, camera: str, leaf: str) -> str:
        return f"{self._options.state_topic_prefix}/{camera}/{leaf}"
