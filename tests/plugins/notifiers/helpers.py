"""What the notifier tests share: sample alerts, a snapshot, configs and small waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
from pydantic import ValidationError

from homesec.interfaces import Notifier
from homesec.models.alert import Alert, SystemAlert
from homesec.models.enums import RiskLevel, StageName
from homesec.plugins.notifiers.mqtt import MQTTNotifier
from tests.services.mosquitto import BrokerAddress, ThrowawayBroker

# The account of the servers that require a login (SMTP, Mosquitto).
USER, PASSWORD = "homesec", "correct-horse-42"

# Small backoff keeps outage tests fast.
FAST_RECONNECT = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "timeout_s": 2.0}

AnyNotifier = TypeVar("AnyNotifier", bound=Notifier)
MakeMQTTNotifier = Callable[..., Awaitable[MQTTNotifier]]


class StartNotifier(Protocol):
    """Starts a notifier for one test; it is closed when the test ends."""

    async def __call__(self, notifier: AnyNotifier) -> AnyNotifier: ...


def sample_alert(n: int = 0, camera: str = "front_door", **changes: Any) -> Alert:
    """The alert for clip `n` of `camera` (one second after clip `n - 1`), fields replaced."""
    clip_id = f"{camera}_{1_700_000_000 + n}.mp4"
    alert = Alert(
        clip_id=clip_id,
        camera_name=camera,
        storage_uri=f"file:///srv/clips/{camera}/{clip_id}",
        view_url=f"https://clips.example.invalid/{camera}/{clip_id}",
        risk_level=RiskLevel.HIGH,
        activity_type="person_at_door",
        notify_reason="risk_level=high",
        summary="A person walks to the front door and tries the handle.",
        ts=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC) + timedelta(seconds=n),
        dedupe_key=clip_id,
        upload_failed=False,
    )
    return alert.model_copy(update=changes)


def stage_failure_alert() -> SystemAlert:
    """The system alert of a clip whose upload gave up."""
    return SystemAlert(
        kind="stage_retries_exhausted",
        message="upload gave up after 3 attempt(s)",
        ts=datetime(2023, 11, 14, 22, 13, 25, tzinfo=UTC),
        clip_id="front_door_1700000000.mp4",
        camera_name="front_door",
        stage=StageName.UPLOAD,
    )


def camera_unhealthy_alert(message: str = "no frames for 5 min") -> SystemAlert:
    """A system alert about no clip in particular."""
    return SystemAlert(
        kind="camera_unhealthy", message=message, ts=datetime(2023, 11, 14, 22, 18, tzinfo=UTC)
    )


def write_jpeg(path: Path, shade: int = 0) -> Path:
    """A small JPEG like a detection snapshot; another `shade` gives other bytes."""
    image = np.full((72, 128, 3), shade, np.uint8)
    cv2.rectangle(image, (20, 10), (60, 60), (0, 255, 0), 2)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def names_the_problem(error: ValidationError, problem: str) -> bool:
    """Whether a config error says `problem` in its text or as one of its error types."""
    return problem in str(error) or problem in {e["type"] for e in error.errors()}


def mqtt_config(
    broker: BrokerAddress | ThrowawayBroker, prefix: str, **extra: Any
) -> dict[str, Any]:
    """An `mqtt` notifier's config publishing under `prefix`, reconnecting quickly."""
    return {
        "host": broker.host,
        "port": broker.port,
        "topic_template": f"{prefix}/alerts/{{camera_name}}",
        "system_topic": f"{prefix}/system/errors",
        **FAST_RECONNECT,
        **extra,
    }


async def wait_for_ping(notifier: Notifier, expected: bool, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while await notifier.ping() is not expected:
            await asyncio.sleep(0.02)
