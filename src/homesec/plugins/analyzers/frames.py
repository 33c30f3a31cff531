"""The frames a VLM sees: which moments of a clip to pick, and those frames as small JPEGs.

`pick_frame_times` decides where to look: when the object filter saw something, half of the
frames go to a window around its first sightings (the moment that made the clip worth
analysing) and the rest are spread over the remainder of the clip for context; with no
sighting, all frames are spread evenly. It is pure, so an eval or a test can check it.

`extract_frames` reads those moments with the shared sampler (`homesec.video.sampler`) and
encodes them as JPEG. It blocks: call it in a worker thread. Each moment is read by its own
sampler call (a seek to the keyframe before it, then decoding up to it), in parallel threads:
PyAV and OpenCV release the GIL while decoding, scaling and encoding, so the frames of one
clip are read on several cores at once.
"""

from __future__ import annotations

import base64
import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2

from homesec.video.clip import VideoReadError
from homesec.video.sampler import sample_frames

logger = logging.getLogger(__name__)

# The window of interest starts a little before the first sighting (the filter samples a few
# frames per second, so the target appeared somewhat earlier) and lasts a few seconds after
# it, while whoever arrived does what they came for.
FOCUS_BEFORE_S = 1.0
FOCUS_AFTER_S = 4.0
# A frame is looked for up to this long after its wanted time (a gap in a camera stream).
_SEARCH_S = 1.0
# Decoding threads per clip; frames of one clip are independent reads.
_MAX_WORKERS = 8


@dataclass(frozen=True)
class EncodedFrame:
    """One picked frame, ready to send."""

    time_s: float
    """Seconds from the clip start."""
    jpeg: bytes
    width: int
    height: int

    @property
    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


def pick_frame_times(
    duration_s: float, first_seen_s: Sequence[float], max_frames: int
) -> list[float]:
    """The moments (seconds from the clip start, ascending) whose frames are sent.

    Every moment is the middle of a slice of the clip, so frames never sit on its very
    first or last instant and two frames never share a slice.
    """
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    if duration_s <= 0:
        return [0.0]
    if not first_seen_s:
        return _spread(0.0, duration_s, max_frames)
    start = max(0.0, min(first_seen_s) - FOCUS_BEFORE_S)
    end = min(duration_s, max(first_seen_s) + FOCUS_AFTER_S)
    outside = [(0.0, start), (end, duration_s)]
    outside_s = sum(b - a for a, b in outside)
    focus_count = (max_frames + 1) // 2
    if end <= start or outside_s <= 0:
        # A sighting at the very end, or a window covering the clip: nothing to weight.
        return _spread(0.0, duration_s, max_frames)
    times = _spread(start, end, focus_count)
    for (a, b), count in zip(outside, _share(max_frames - focus_count, outside), strict=True):
        times += _spread(a, b, count)
    return sorted(times)


def extract_frames(
    path: Path, times_s: Sequence[float], *, max_size: int, quality: int
) -> list[EncodedFrame]:
    """The frames at `times_s`, longest side at most `max_size`, as JPEG of `quality`.

    Blocking. Moments that fall on the same frame give it once. A moment that cannot be
    read (a clip cut short of its declared length) is skipped; when none can be read,
    `VideoReadError` is raised.
    """
    if not times_s:
        return []
    workers = min(len(times_s), os.cpu_count() or 1, _MAX_WORKERS)
    with ThreadPoolExecutor(workers, thread_name_prefix="vlm-frames") as pool:
        results = list(
            pool.map(lambda t: _read_one(path, t, max_size=max_size, quality=quality), times_s)
        )
    frames: dict[float, EncodedFrame] = {}
    errors: list[VideoReadError] = []
    for result in results:
        match result:
            case EncodedFrame():
                frames.setdefault(result.time_s, result)
            case VideoReadError():
                errors.append(result)
    if not frames:
        raise errors[0] if errors else VideoReadError(f"{path}: no frame at the picked moments")
    if errors:
        logger.warning("%d of %d VLM frames of %s unreadable", len(errors), len(times_s), path)
    return sorted(frames.values(), key=lambda frame: frame.time_s)


def _spread(start: float, end: float, count: int) -> list[float]:
    step = (end - start) / count if count else 0.0
    return [start + (i + 0.5) * step for i in range(count)]


def _share(count: int, spans: Sequence[tuple[float, float]]) -> list[int]:
    """`count` split over `spans` in proportion to their lengths (largest remainder)."""
    lengths = [b - a for a, b in spans]
    total = sum(lengths)
    exact = [count * length / total for length in lengths]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(spans)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: count - sum(shares)]:
        shares[i] += 1
    return shares


def _read_one(
    path: Path, time_s: float, *, max_size: int, quality: int
) -> EncodedFrame | VideoReadError | None:
    try:
        # One thread per decoder: the parallelism is across frames, not inside one.
        sampled = sample_frames(
            path,
            fps=1.0,
            max_frames=1,
            start_s=time_s,
            end_s=time_s + _SEARCH_S,
            fit=(max_size, max_size),
            pixel_format="bgr24",
            threads=1,
        )
        frame = next(sampled, None)
        sampled.close()
    except VideoReadError as exc:
        return exc
    if frame is None:
        return None
    ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return VideoReadError(f"{path}: frame at {frame.time_s:.2f} s could not be encoded")
    height, width = frame.image.shape[:2]
    return EncodedFrame(round(frame.time_s, 3), jpeg.tobytes(), width, height)
