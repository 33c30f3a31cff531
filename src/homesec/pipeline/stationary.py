"""Stationary objects: a detection that stood still in the clip, at a place where a still
detection of the same class stood in the camera's recent clips, long enough ago (a parked
car, a garden statue seen as a person), is marked `stationary`; it counts for nothing (no
VLM, no event, no alert) until it moves. Only the places the detector already produced are
compared, from the stored states.

A detection counts as still only when every place its class was seen in the clip is still
(held for at least half of the sampled frames): a person walking past the statue is in
places of their own, so the class is not stationary and the clip is analysed. When earlier
clips cannot be read (the database is down), or the detector lists no places, nothing is
marked: an alert too many beats one missed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from homesec.models.config import StationaryConfig
from homesec.models.queries import ClipFilter
from homesec.models.results import Box, Detection, FilterResult, iou
from homesec.models.state import ClipStateData
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

# A place is still when it held the class in half the sampled frames, and in two at least:
# in a single frame, someone walking and a statue look the same.
_STILL_SHARE = 0.5
_STILL_FRAMES = 2


class StationaryObjects:
    def __init__(self, config: StationaryConfig, repository: ClipRepository) -> None:
        self._config = config
        self._repository = repository

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    async def mark(
        self, camera_name: str, clip_id: str, start_ts: datetime, result: FilterResult
    ) -> FilterResult:
        """The result with each detection that has not moved marked `stationary`."""
        if not self._config.enabled or not result.detections:
            return result
        earlier = await self._earlier_clips(camera_name, clip_id, start_ts)
        if not earlier:
            return result
        still_before = [
            (detection.class_name, box)
            for state in earlier
            if state.filter_result is not None
            for detection in state.filter_result.detections
            for box in still_boxes(detection, state.filter_result.sampled_frames)
        ]
        marked = [
            detection.model_copy(update={"stationary": True})
            if self._stood_still(detection, result.sampled_frames, still_before)
            else detection
            for detection in result.detections
        ]
        return result.model_copy(update={"detections": marked})

    async def _earlier_clips(
        self, camera_name: str, clip_id: str, start_ts: datetime
    ) -> list[ClipStateData]:
        """The camera's recent clips that started at least `after_s` before this one."""
        page = await self._repository.list_clips(
            ClipFilter(camera=camera_name), limit=self._config.lookback_clips + 1
        )
        if page is None:
            return []
        cutoff = start_ts - timedelta(seconds=self._config.after_s)
        return [
            item.state
            for item in page.items
            if item.state.clip_id != clip_id
            and item.state.start_ts is not None
            and item.state.start_ts <= cutoff
            and item.state.filter_result is not None
        ]

    def _stood_still(
        self, detection: Detection, sampled_frames: int, before: list[tuple[str, Box]]
    ) -> bool:
        """Every place of the class in this clip is still, and stood still before."""
        boxes = still_boxes(detection, sampled_frames)
        return len(boxes) == len(detection.places) > 0 and all(
            any(
                name == detection.class_name and iou(box, other) >= self._config.min_iou
                for name, other in before
            )
            for box in boxes
        )


def still_boxes(detection: Detection, sampled_frames: int) -> list[Box]:
    """The boxes of the places where the class stayed for most of the clip."""
    needed = max(_STILL_FRAMES, _STILL_SHARE * sampled_frames)
    return [place.box for place in detection.places if place.frames >= needed]
