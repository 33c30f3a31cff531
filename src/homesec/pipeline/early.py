"""Early detection for live sources: the detector looks at a clip while it is being recorded.

A source that can (`LiveClipSource`) hands on each finished segment of a clip it is
recording. Per camera, the object filter checks one segment at a time; when it falls behind,
a segment still waiting is replaced by the newer one (the newest is the likeliest to show
what set the motion off). The first segment with a trigger class settles the clip: its
snapshot is written from that segment, next to where the clip will be, and the detection
event goes out through the pipeline's `DetectionAnnouncer` with the clip's future clip_id,
so the finalized clip does not send it again. That is recorded in the clip's journal (the
one the pipeline uses too: one writer per clip), so a restart knows it too. Later segments
of a settled clip, and those of a clip already finalized, are not looked at; the finalized
clip is filtered as a whole, as always, so a segment that vanished or could not be read is
only logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from homesec.interfaces import ObjectFilter
from homesec.models.clip import Clip, LiveSegment, snapshot_name
from homesec.models.enums import EventType
from homesec.models.results import FilterOverrides, FilterResult
from homesec.pipeline.detection import Announcement, DetectionAnnouncer
from homesec.pipeline.journal import ClipJournals
from homesec.pipeline.snapshot import snapshot_of
from homesec.pipeline.stages import log_extra
from homesec.single_flight import SingleRun

logger = logging.getLogger(__name__)


@dataclass
class _Lane:
    """One camera's early detection: the clip it follows and the segment waiting."""

    clip_id: str | None = None
    announced: bool = False
    finalized: bool = False
    waiting: LiveSegment | None = None
    worker: SingleRun = field(default_factory=SingleRun)

    def follow(self, clip_id: str) -> None:
        if clip_id != self.clip_id:
            self.clip_id, self.announced, self.finalized = clip_id, False, False

    def recording(self, clip_id: str) -> bool:
        return self.clip_id == clip_id and not self.finalized

    def looks_at(self, clip_id: str) -> bool:
        """Segments of this clip are still worth a look."""
        return self.recording(clip_id) and not self.announced


class CameraRules(Protocol):
    """What the pipeline knows of a camera that early detection needs too."""

    def filter_overrides(self, camera_name: str) -> FilterOverrides | None: ...

    def relevant(self, camera_name: str, filter_result: FilterResult) -> FilterResult: ...

    async def mark_stationary(
        self, clip: LiveSegment, filter_result: FilterResult
    ) -> FilterResult: ...


class EarlyDetection:
    """Runs the object filter on the live segments of clips being recorded."""

    def __init__(
        self,
        object_filter: ObjectFilter,
        detections: DetectionAnnouncer,
        journals: ClipJournals,
        pipeline: CameraRules,
    ) -> None:
        self._filter = object_filter
        self._rules = pipeline
        self._detections = detections
        self._journals = journals
        self._lanes: dict[str, _Lane] = {}

    def on_segment(self, segment: LiveSegment) -> None:
        """Live callback (event loop's thread): check the segment when the filter is free."""
        if not self._detections.wanted(segment.camera_name):
            return  # nobody takes detection events: the work would be wasted
        lane = self._lanes.setdefault(segment.camera_name, _Lane())
        lane.follow(segment.clip_id)
        if not lane.looks_at(segment.clip_id):
            return
        lane.waiting = segment
        # A worker on its way takes the segment waiting when it is free.
        lane.worker.start(partial(self._work, lane), name=f"early-detection:{segment.camera_name}")

    def clip_finalized(self, clip: Clip) -> None:
        """The clip is handed on to the pipeline, which filters it as a whole."""
        lane = self._lanes.get(clip.camera_name)
        if lane is not None and lane.clip_id == clip.clip_id:
            lane.finalized, lane.waiting = True, None

    async def start(self) -> None:
        """Nothing to start: a camera's worker starts with its first live segment."""

    async def aclose(self) -> None:
        """Stop looking (at shutdown, once the sources are closed)."""
        await asyncio.gather(*(lane.worker.cancel() for lane in self._lanes.values()))

    async def _work(self, lane: _Lane) -> None:
        while (segment := lane.waiting) is not None:
            lane.waiting = None
            checked = await self._check(segment)
            # The clip may have been finalized (or another begun) while the filter looked.
            if checked is None or not lane.looks_at(segment.clip_id):
                continue
            marked = await self._rules.mark_stationary(segment, checked)
            result = self._rules.relevant(segment.camera_name, marked)
            if not self._detections.triggers(result):
                continue
            lane.announced, lane.waiting = True, None
            announcement = await self._announce(segment, result)
            # Once finalized, the clip's own journal records the event instead.
            if announcement is not None and announcement.live and lane.recording(segment.clip_id):
                await self._store(segment, announcement)

    async def _check(self, segment: LiveSegment) -> FilterResult | None:
        try:
            overrides = self._rules.filter_overrides(segment.camera_name)
            return await self._filter.detect(segment.path, overrides)
        except Exception as exc:
            logger.info(
                "Live segment %s not checked (the finalized clip will be): %s",
                segment.path.name,
                exc,
                extra=log_extra(segment.clip_id, segment.camera_name),
            )
            return None

    async def _announce(self, segment: LiveSegment, result: FilterResult) -> Announcement | None:
        target = segment.clip_path.with_name(snapshot_name(segment.clip_id))
        snapshot = await snapshot_of(
            segment.path, result, target, log_extra(segment.clip_id, segment.camera_name)
        )
        announcement = await self._detections.announce(
            segment.clip_id, segment.camera_name, result, snapshot, live=True
        )
        if announcement is not None:
            logger.info(
                "Detection event for %s sent while it is recorded: %s",
                segment.clip_id,
                ", ".join(result.detected_classes),
                extra=log_extra(segment.clip_id, segment.camera_name, EventType.DETECTION_SENT),
            )
        return announcement

    async def _store(self, segment: LiveSegment, announcement: Announcement) -> None:
        # Still recording: the pipeline takes this journal over when the clip is finalized.
        async with self._journals.hold(
            segment.clip_id, segment.camera_name, segment.clip_path
        ) as journal:
            journal.detection_sent(announcement.sent_at, announcement.describe())
