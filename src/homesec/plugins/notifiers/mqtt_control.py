"""The mode, the cameras' alert switches and the clips waiting for review, on MQTT.

Under the notifier's `state_topic_prefix` (retained state; commands are not retained):

- `mode`: the mode in effect; `mode/set`: publish a mode name to change it;
- `{camera}/alerts`: `ON`/`OFF`; `{camera}/alerts/set`: publish `ON` or `OFF`;
- `{camera}/needs_review`: `{"waiting": n}`, the camera's clips waiting for review.

A command the broker hands out because it was retained is ignored: it would come again on
every reconnect and undo every later change (the schedule's, the UI's). An unknown mode or
payload is logged and the state published again, so a Home Assistant select that sent it
shows the real mode.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from homesec.interfaces import ModeControl
from homesec.models.enums import ModeSetter
from homesec.models.modes import ModeRefused, ModeState
from homesec.plugins.notifiers.mqtt_outbox import OutboxMessage

logger = logging.getLogger(__name__)

ON = "ON"
OFF = "OFF"
_SET = "set"


class ControlTopics:
    """Where the mode, the alert switches and the review counts live under `prefix`."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    @property
    def mode(self) -> str:
        return f"{self._prefix}/mode"

    @property
    def mode_set(self) -> str:
        return f"{self.mode}/{_SET}"

    def alerts(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/alerts"

    def alerts_set(self, camera: str) -> str:
        return f"{self.alerts(camera)}/{_SET}"

    @property
    def digest(self) -> str:
        return f"{self._prefix}/digest"

    def needs_review(self, camera: str) -> str:
        return f"{self._prefix}/{camera}/needs_review"

    def subscriptions(self) -> list[str]:
        return [self.mode_set, self.alerts_set("+")]

    def review_messages(self, waiting: Mapping[str, int]) -> list[OutboxMessage]:
        return [
            _retained(self.needs_review(camera), json.dumps({"waiting": count}))
            for camera, count in waiting.items()
        ]

    def commanded_camera(self, topic: str) -> str | None:
        """The camera an `{camera}/alerts/set` topic is about, else None."""
        head, _, camera_and_rest = topic.partition(f"{self._prefix}/")
        camera, _, rest = camera_and_rest.partition("/")
        return camera if not head and camera and rest == f"alerts/{_SET}" else None


def _cut(topic: str) -> str:
    """A topic from outside (up to 64 KiB) cut for a log line."""
    return topic if len(topic) <= 200 else f"{topic[:200]}..."


def _retained(topic: str, payload: str) -> OutboxMessage:
    return OutboxMessage(topic=topic, payload=payload, retain=True, supersedable=True)


class RemoteControl:
    """Turns commands on the topics into mode changes, and the state into messages."""

    def __init__(self, topics: ControlTopics, control: ModeControl) -> None:
        self._topics = topics
        self._control = control

    def state_messages(self, state: ModeState) -> list[OutboxMessage]:
        cameras = self._control.camera_names
        return [
            _retained(self._topics.mode, state.mode),
            *(
                _retained(self._topics.alerts(c), ON if state.alerts_on(c) else OFF)
                for c in cameras
            ),
        ]

    @property
    def state(self) -> ModeState:
        return self._control.state

    def handles(self, topic: str) -> bool:
        return topic == self._topics.mode_set or self._topics.commanded_camera(topic) is not None

    async def command(self, topic: str, payload: object, retained: bool) -> list[OutboxMessage]:
        """Carry out a command; what to publish when it changed nothing (the state again)."""
        text = payload.decode(errors="replace") if isinstance(payload, bytes | bytearray) else ""
        text = text.strip()
        if retained:
            logger.warning(
                "Ignored a retained command on %s (commands must not be retained)", _cut(topic)
            )
            return []
        camera = self._topics.commanded_camera(topic)
        if camera is None:
            result = await self._control.set_mode(text, ModeSetter.MQTT)
        elif text.upper() in (ON, OFF):
            result = await self._control.set_alerts(camera, text.upper() == ON, ModeSetter.MQTT)
        else:
            result = ModeRefused(reason=f"{text[:40]!r} is neither {ON} nor {OFF}")
        if isinstance(result, ModeRefused):
            logger.warning("MQTT command on %s refused: %s", _cut(topic), result.reason)
            return self.state_messages(self._control.state)
        return []  # the change itself is published by the mode listener
