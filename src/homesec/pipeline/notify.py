"""Notification fan-out: every routed sink in parallel, each retried on its own.

A sink sees an alert only when its route allows it (cameras, minimum risk level, per-camera
cooldown); each decision is logged and each sink's outcome is journaled in the clip's state,
so a clip re-processed after a restart does not alert the sinks that already have it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from homesec.errors import NotifyError
from homesec.interfaces import DetectionSink, Notifier
from homesec.models.alert import Alert, DetectionEvent, SystemAlert
from homesec.models.config import NotifierRef, RetryConfig
from homesec.models.enums import EventType, StageStatus
from homesec.pipeline.journal import ClipJournal
from homesec.pipeline.stages import retrying

logger = logging.getLogger(__name__)


@dataclass
class Sink:
    notifier: Notifier
    route: NotifierRef
    last_sent: dict[str, float] = field(default_factory=dict)  # camera -> monotonic time

    @property
    def name(self) -> str:
        return self.notifier.name

    def skip_reason(self, alert: Alert) -> str | None:
        """Why this sink does not get the alert, or None when it does."""
        route = self.route
        if route.cameras is not None and alert.camera_name not in route.cameras:
            return f"camera {alert.camera_name} not routed"
        if route.min_risk_level is not None and (
            alert.risk_level is None or alert.risk_level < route.min_risk_level
        ):
            return f"risk_level={alert.risk_level} below {route.min_risk_level}"
        last = self.last_sent.get(alert.camera_name)
        if last is not None and time.monotonic() - last < route.cooldown_s:
            return f"cooldown {route.cooldown_s:g}s for {alert.camera_name}"
        return None


class NotificationFanout:
    def __init__(self, sinks: list[Sink], retry: RetryConfig) -> None:
        self._sinks = sinks
        self._retry = retry

    @property
    def notifiers(self) -> list[Notifier]:
        return [sink.notifier for sink in self._sinks]

    async def deliver(
        self, alert: Alert, snapshot: Path | None, journal: ClipJournal
    ) -> list[NotifyError]:
        """Send to every routed sink; returns the sinks' failures (after their retries)."""
        pending = []
        for sink in self._sinks:
            if journal.sink_status(sink.name) == StageStatus.OK:
                continue  # delivered before a restart
            reason = sink.skip_reason(alert)
            if reason is None:
                # Claimed now, so concurrent alerts of one camera respect the cooldown.
                sink.last_sent[alert.camera_name] = time.monotonic()
                pending.append(sink)
                continue
            logger.info(
                "Alert for %s not sent to %s: %s",
                alert.clip_id,
                sink.name,
                reason,
                extra={"event_type": EventType.STAGE_SKIPPED, "clip_id": alert.clip_id},
            )
            journal.sink_done(sink.name, StageStatus.SKIPPED, reason)
        results = await asyncio.gather(*(self._send(s, alert, snapshot, journal) for s in pending))
        return [error for error in results if error is not None]

    def takes_detections(self, camera_name: str) -> bool:
        """Whether any sink takes this camera's early detection events."""
        return bool(self._detection_sinks(camera_name))

    async def deliver_detection(self, event: DetectionEvent, snapshot: Path | None) -> list[str]:
        """Best effort, fast: the sinks that opted in get the early detection event.

        Returns the names of the sinks that have it. Retries would only make it late, and
        the final alert follows anyway.
        """
        sinks = self._detection_sinks(event.camera_name)
        results = await asyncio.gather(
            *(cast(DetectionSink, s.notifier).send_detection(event, snapshot) for s in sinks),
            return_exceptions=True,
        )
        delivered = []
        for sink, result in zip(sinks, results, strict=True):
            if isinstance(result, Exception):
                logger.warning("Sink %s missed a detection event: %s", sink.name, result)
            else:
                delivered.append(sink.name)
        return delivered

    async def broadcast_system(self, alert: SystemAlert) -> bool:
        """Best effort, once: a system alert is itself the report of a failure. Whether a
        sink took it (or none takes system alerts: nobody to tell)."""
        sinks = [sink for sink in self._sinks if sink.route.system_alerts]
        results = await asyncio.gather(
            *(sink.notifier.send_system(alert) for sink in sinks), return_exceptions=True
        )
        for sink, result in zip(sinks, results, strict=True):
            if isinstance(result, Exception):
                logger.error("Sink %s could not send a system alert: %s", sink.name, result)
        return not sinks or any(not isinstance(result, Exception) for result in results)

    def _detection_sinks(self, camera_name: str) -> list[Sink]:
        return [
            sink
            for sink in self._sinks
            if sink.route.on_detection
            and isinstance(sink.notifier, DetectionSink)
            and (sink.route.cameras is None or camera_name in sink.route.cameras)
        ]

    async def _send(
        self, sink: Sink, alert: Alert, snapshot: Path | None, journal: ClipJournal
    ) -> NotifyError | None:
        attempts = 0
        try:
            async for attempt in retrying(self._retry):
                with attempt:
                    attempts += 1
                    await sink.notifier.send(alert, snapshot)
        except Exception as exc:
            error = NotifyError(alert.clip_id, sink.name, exc)
            journal.sink_done(sink.name, StageStatus.ERROR, error.describe(), attempts)
            return error
        journal.sink_done(sink.name, StageStatus.OK, None, attempts)
        return None
