"""The alert snapshot: the frame where the best detection was first seen, its box drawn."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from homesec.models.results import Detection, FilterResult
from homesec.video.sampler import sample_frames

logger = logging.getLogger(__name__)

_MAX_SIDE = 1280
_JPEG_QUALITY = 85
_BOX_COLOUR = (0, 200, 255)  # BGR amber: visible on day and night footage


def best_detection(result: FilterResult) -> Detection | None:
    return max(result.detections, key=lambda d: d.confidence, default=None)


async def snapshot_of(
    video: Path, result: FilterResult, target: Path, log_extra: Mapping[str, str | None]
) -> Path | None:
    """The best detection's snapshot at `target`, written off the event loop unless it is
    there already; None when there is nothing to show or it cannot be made (logged)."""
    detection = best_detection(result)
    if detection is None:
        return None
    try:
        if not await asyncio.to_thread(target.exists):
            await asyncio.to_thread(write_snapshot, video, detection, target)
    except Exception as exc:
        logger.warning("No snapshot %s: %s", target.name, exc, extra=log_extra)
        return None
    return target


def write_snapshot(video: Path, detection: Detection, target: Path) -> Path:
    """Blocking: decode one frame, draw the box and label, write a JPEG atomically."""
    frames = sample_frames(
        video, fps=1.0, max_frames=1, start_s=detection.first_seen_s, fit=(_MAX_SIDE, _MAX_SIDE)
    )
    frame = next(iter(frames), None)
    if frame is None:
        raise ValueError(f"{video.name}: no frame at {detection.first_seen_s:.1f} s")
    image = np.ascontiguousarray(frame.image)
    scale = image.shape[1] / frame.source_size[0]
    x1, y1, x2, y2 = (round(v * scale) for v in detection.box)
    thickness = max(2, image.shape[1] // 400)
    cv2.rectangle(image, (x1, y1), (x2, y2), _BOX_COLOUR, thickness)
    label = f"{detection.class_name} {detection.confidence:.0%}"
    cv2.putText(image, label, (x1, max(y1 - 8, 16)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, _BOX_COLOUR, 2)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise ValueError(f"{video.name}: JPEG encoding failed")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    with os.fdopen(fd, "wb") as handle:
        handle.write(encoded.tobytes())
    Path(tmp).replace(target)
    return target
