"""The detection event: the first, fast signal that a trigger class is in a clip, once a clip.

It may come from the live segments of a clip still being recorded (`pipeline/early.py`) or
from the finalized clip's filter result (`ClipPipeline`). Both go through the pipeline's one
`DetectionAnnouncer`: it builds the event, hands it to the sinks that take it, and remembers
which clips had theirs, so the finalized clip does not send it a second time. A caller that
comes while a clip's event is on its way gets that event's outcome instead of sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cachetools import FIFOCache

from homesec.models.alert import DetectionEvent
from homesec.models.config import VLMSection
from homesec.models.enums import RunMode
from homesec.models.events import utc_now
from homesec.models.results import FilterResult
from homesec.pipeline.notify import NotificationFanout
from homesec.single_flight import SingleFlight

# Clips whose event went out while they were recorded, until their finalized clip comes.
_REMEMBERED_CLIPS = 1024


def vlm_skip_reason(vlm: VLMSection, detected_classes: list[str]) -> str | None:
    """Why the VLM does not look at a clip with these classes, or None when it does."""
    match vlm.run_mode:
        case RunMode.NEVER:
            return "run_mode=never"
        case RunMode.ALWAYS:
            return None
        case RunMode.TRIGGER_ONLY:
            if set(detected_classes) & set(vlm.trigger_classes):
                return None
            return f"no trigger class ({', '.join(vlm.trigger_classes)}) detected"


@dataclass(frozen=True)
class Announcement:
    """A detection event that went out."""

    sent_at: datetime
    sinks: tuple[str, ...]
    live: bool
    """Sent while the clip was still being recorded."""

    def describe(self) -> str:
        sinks = ", ".join(self.sinks)
        return f"{sinks} (while recording)" if self.live else sinks


class DetectionAnnouncer:
    """Sends each clip's detection event at most once, whoever asks first."""

    def __init__(
        self, vlm: VLMSection, fanout: NotificationFanout, *, analyzer_configured: bool
    ) -> None:
        self._vlm = vlm
        self._fanout = fanout
        self._analyzer_configured = analyzer_configured
        self._sent: FIFOCache[str, Announcement] = FIFOCache(_REMEMBERED_CLIPS)
        self._sending: SingleFlight[str, Announcement | None] = SingleFlight()

    def wanted(self, camera_name: str) -> bool:
        """Whether any sink takes this camera's detection events."""
        return self._fanout.takes_detections(camera_name)

    def triggers(self, result: FilterResult) -> bool:
        """Whether the result holds a class that the event is sent for."""
        return bool(set(result.detected_classes) & set(self._vlm.trigger_classes))

    def forget(self, clip_id: str) -> None:
        """The clip's own journal has the event from now on."""
        self._sent.pop(clip_id, None)

    async def announce(
        self,
        clip_id: str,
        camera_name: str,
        result: FilterResult,
        snapshot: Path | None,
        *,
        live: bool,
    ) -> Announcement | None:
        """The clip's event: sent now when it has a trigger class and was not sent before
        (the earlier one otherwise); None when no sink has it."""
        if (earlier := self._sent.get(clip_id)) is not None:
            return earlier
        if clip_id not in self._sending and not (
            self.triggers(result) and self.wanted(camera_name)
        ):
            return None
        return await self._sending.call(
            clip_id,
            lambda: self._send(self._event(clip_id, camera_name, result, snapshot), snapshot, live),
            name=f"detection-event:{clip_id}",
        )

    def _event(
        self, clip_id: str, camera_name: str, result: FilterResult, snapshot: Path | None
    ) -> DetectionEvent:
        return DetectionEvent(
            clip_id=clip_id,
            camera_name=camera_name,
            detected_classes=result.detected_classes,
            confidence=result.confidence,
            ts=utc_now(),
            snapshot=str(snapshot) if snapshot else None,
            analysis_pending=self._analyzer_configured
            and vlm_skip_reason(self._vlm, result.detected_classes) is None,
            dedupe_key=clip_id,
        )

    async def _send(
        self, event: DetectionEvent, snapshot: Path | None, live: bool
    ) -> Announcement | None:
        delivered = await self._fanout.deliver_detection(event, snapshot)
        if not delivered:
            return None  # the finalized clip may try again
        announcement = Announcement(event.ts, tuple(delivered), live)
        self._sent[event.clip_id] = announcement
        return announcement
