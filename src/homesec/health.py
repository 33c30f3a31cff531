"""Derives the service's health from the pipeline heartbeat, database, storage and sources.

A camera unhealthy for `pipeline.camera_unhealthy_alert_s` raises a system alert, and
another when it is back.

Unhealthy (HTTP 503) when the pipeline has stalled, the storage backend is unreachable or a
camera's source is down; degraded (still 200) when clips keep flowing but something needs a
look: the database is down (state writes are best effort), a stage gave up on its last clip
(the VLM is down, say) or the spool cannot be held under its limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from homesec import __version__, metrics
from homesec.interfaces import ClipSource, HealthPublisher, Notifier, StorageBackend
from homesec.models.alert import SystemAlert
from homesec.models.enums import HealthStatus, SystemAlertKind
from homesec.models.events import utc_now
from homesec.models.health import CameraHealth, ComponentHealth, Diagnostics, HealthReport
from homesec.pipeline.core import ClipPipeline
from homesec.pipeline.retention import RetentionPruner
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0
HEALTH_PUBLISH_INTERVAL_S = 30.0
_CHECK_TIMEOUT_S = 3.0


@dataclass
class HealthMonitor:
    pipeline: ClipPipeline
    repository: ClipRepository
    storage: StorageBackend
    sources: list[ClipSource]
    notifiers: list[Notifier]
    retention: RetentionPruner | None = None
    started: float = field(default_factory=time.monotonic, init=False)

    async def beat_forever(self) -> None:
        """Proves the event loop is alive (health fails when this stops ticking) and publishes
        the health report to the notifiers that show it, every HEALTH_PUBLISH_INTERVAL_S."""
        last_published = time.monotonic()  # the app publishes once itself when it is up
        while True:
            self.pipeline.last_heartbeat = time.time()
            if time.monotonic() - last_published >= HEALTH_PUBLISH_INTERVAL_S:
                last_published = time.monotonic()
                await self.publish()
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    async def publish(self) -> None:
        """Send the current report to the notifiers that show health (Home Assistant)."""
        publishers = [n for n in self.notifiers if isinstance(n, HealthPublisher)]
        if not publishers:
            return
        report = await self.report()
        results = await asyncio.gather(
            *(publisher.publish_health(report) for publisher in publishers),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                logger.warning("Could not publish health: %s", result)

    async def report(self) -> HealthReport:
        heartbeat_age = time.time() - self.pipeline.last_heartbeat
        pipeline_ok = heartbeat_age < 3 * HEARTBEAT_INTERVAL_S
        database_ok, storage_ok = await asyncio.gather(
            _bounded(self.repository.ping()), _bounded(self.storage.ping())
        )
        components = [
            ComponentHealth(
                name="pipeline", ok=pipeline_ok, detail=f"heartbeat {heartbeat_age:.0f}s ago"
            ),
            ComponentHealth(name="database", ok=database_ok, detail=self.repository.backend_name),
            ComponentHealth(name="storage", ok=storage_ok),
        ]
        # Clips keep flowing, but a person should look: shown as degraded.
        warnings = [
            ComponentHealth(name=str(stage), ok=False, detail=f"gave up on the last clip: {why}")
            for stage, why in self.pipeline.failing_stages.items()
        ]
        if self.retention is not None:
            problem = self.retention.problem
            warnings.append(ComponentHealth(name="spool", ok=problem is None, detail=problem))
        components += warnings
        cameras = [
            CameraHealth(
                name=source.camera_name,
                healthy=source.is_healthy(),
                last_heartbeat=source.last_heartbeat() or None,
            )
            for source in self.sources
        ]
        return HealthReport(
            status=_overall(
                pipeline_ok, storage_ok, cameras, database_ok and all(w.ok for w in warnings)
            ),
            version=__version__,
            uptime_s=round(time.monotonic() - self.started, 1),
            components=components,
            cameras=cameras,
        )

    async def diagnostics(self) -> Diagnostics:
        pings = await asyncio.gather(*(_bounded(n.ping()) for n in self.notifiers))
        return Diagnostics(
            health=await self.report(),
            clips_in_flight=self.pipeline.in_flight,
            state_backend=self.repository.backend_name,
            dropped_state_writes=self.repository.dropped_writes,
            notifiers=[
                ComponentHealth(name=notifier.name, ok=ok)
                for notifier, ok in zip(self.notifiers, pings, strict=True)
            ],
        )


def _overall(
    pipeline_ok: bool, storage_ok: bool, cameras: list[CameraHealth], nothing_to_see: bool
) -> HealthStatus:
    if not (pipeline_ok and storage_ok and all(camera.healthy for camera in cameras)):
        return HealthStatus.UNHEALTHY
    return HealthStatus.HEALTHY if nothing_to_see else HealthStatus.DEGRADED


async def _bounded(check: Awaitable[bool]) -> bool:
    # A probe must answer even when a dependency hangs or raises.
    try:
        return await asyncio.wait_for(check, _CHECK_TIMEOUT_S)
    except Exception:
        return False


@dataclass
class CameraWatch:
    """Raises a system alert when a camera stays unhealthy too long, and when it recovers."""

    sources: list[ClipSource]
    threshold_s: float
    raise_alert: Callable[[SystemAlert], Awaitable[object]]
    _unhealthy_since: dict[str, float] = field(default_factory=dict, init=False)
    _alerted: set[str] = field(default_factory=set, init=False)

    async def watch_forever(self) -> None:
        interval = min(HEARTBEAT_INTERVAL_S, self.threshold_s / 2)
        while True:
            await self.check(time.monotonic())
            await asyncio.sleep(interval)

    async def check(self, now: float) -> None:
        for source in self.sources:
            camera = source.camera_name
            healthy = source.is_healthy()
            metrics.set_source_health(camera, healthy)
            if healthy:
                self._unhealthy_since.pop(camera, None)
                if camera in self._alerted:
                    self._alerted.discard(camera)
                    await self.raise_alert(
                        _camera_alert(SystemAlertKind.CAMERA_RECOVERED, camera, "is back")
                    )
                continue
            since = self._unhealthy_since.setdefault(camera, now)
            if now - since >= self.threshold_s and camera not in self._alerted:
                self._alerted.add(camera)
                message = f"unhealthy for {now - since:.0f}s"
                await self.raise_alert(
                    _camera_alert(SystemAlertKind.CAMERA_UNHEALTHY, camera, message)
                )


def _camera_alert(kind: SystemAlertKind, camera: str, message: str) -> SystemAlert:
    return SystemAlert(
        kind=kind, message=f"camera {camera} {message}", ts=utc_now(), camera_name=camera
    )
