"""Stationary objects: a detection whose box stands where a detection of the same class stood
in the camera's recent clips, long enough ago (a parked car, a garden statue seen as a
person), is marked `stationary`; it counts for nothing (no VLM, no event, no alert) until it
moves. Only the boxes the detector already produced are compared, from the stored states.
When those cannot be read (the database is down), nothing is marked: an alert too many beats
one missed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from homesec.models.config import StationaryConfig
from homesec.models.queries import ClipFilter
from homesec.models.results import Detection, FilterResult
from homesec.models.state import ClipStateData
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


class StationaryObjects:
    def __init__(self, config: StationaryConfig, repository: ClipRepository) -> None:
        self._config = config
        self._repository = repository

    async def mark(
        self, camera_name: str, clip_id: str, start_ts: datetime, result: FilterResult
    ) -> FilterResult:
        """The result with each detection that has not moved marked `stationary`."""
        if not self._config.enabled or not result.detections:
            return result
        earlier = await self._earlier_clips(camera_name, clip_id, start_ts)
        if not earlier:
            return result
        marked = [
            detection.model_copy(update={"stationary": True})
            if self._stood_still(detection, earlier)
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

    def _stood_still(self, detection: Detection, earlier: list[ClipStateData]) -> bool:
        return any(
            other.class_name == detection.class_name
            and iou(other.box, detection.box) >= self._config.min_iou
            for state in earlier
            if state.filter_result is not None
            for other in state.filter_result.detections
        )


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0
