"""Frigate's own detections of a review item as HomeSec's `FilterResult` (labels, scores,
boxes, first sightings and Frigate's zones), so HomeSec's detector need not look at the clip
again (`use_frigate_detections`)."""

from __future__ import annotations

import asyncio

from homesec.models.results import Detection, FilterResult
from homesec.plugins.sources.frigate.api import FrigateApi, FrigateEvent, ReviewItem
from homesec.video.clip import ClipInfo

MODEL = "frigate"


async def frigate_detections(api: FrigateApi, item: ReviewItem, clip: ClipInfo) -> FilterResult:
    """The item's tracked objects (false positives left out), boxes in the clip's pixels.
    Raises FrigateUnreachable when an event cannot be read."""
    events = await asyncio.gather(*(api.event(event_id) for event_id in item.data.detections))
    detections = [_detection(event, item, clip) for event in events if not event.false_positive]
    classes = list(dict.fromkeys(detection.class_name for detection in detections))
    return FilterResult(
        detected_classes=classes,
        confidence=max((detection.confidence for detection in detections), default=0.0),
        sampled_frames=0,
        model=MODEL,
        detections=detections,
    )


def _detection(event: FrigateEvent, item: ReviewItem, clip: ClipInfo) -> Detection:
    x, y, w, h = event.data.box if event.data.box and len(event.data.box) == 4 else (0, 0, 1, 1)
    box = (x * clip.width, y * clip.height, (x + w) * clip.width, (y + h) * clip.height)
    seen_after = (event.start_time - item.start_time).total_seconds()
    return Detection(
        class_name=event.label,
        confidence=event.score,
        first_seen_s=max(0.0, seen_after),
        box=box,
        zones=event.zones,
    )
