"""The frames a VLM sees: which moments of a clip to pick, and those frames as small JPEGs.

`plan_frames` decides where to look: when the object filter saw something, half of the
frames go to a window around its first sightings (the moment that made the clip worth
analysing) and the rest are spread over the remainder of the clip for context; with no
sighting, all frames are spread evenly. The plan is a few evenly spaced runs (before the
window, the window, after it), because that is what the shared sampler reads in one pass.
It is pure, so an eval or a test can check it (`pick_frame_times` lists its moments).

`extract_frames` reads the runs with the shared sampler (`homesec.video.sampler`), split
into as many pieces as there are cores and read in parallel threads (PyAV and OpenCV
release the GIL while decoding, scaling and encoding), and encodes the frames as JPEG. It
blocks: call it in a worker thread.
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
from homesec.video.sampler import SampledFrame, sample_frames

logger = logging.getLogger(__name__)

# The window of interest starts a little before the first sighting (the filter samples a few
# frames per second, so the target appeared somewhat earlier) and lasts a few seconds after
# it, while whoever arrived does what they came for.
FOCUS_BEFORE_S = 1.0
FOCUS_AFTER_S = 4.0


@dataclass(frozen=True)
class FrameRun:
    """`count` moments `step_s` apart from `first_s`, all before `end_s`."""

    first_s: float
    step_s: float
    count: int
    end_s: float

    @property
    def times(self) -> list[float]:
        return [self.first_s + i * self.step_s for i in range(self.count)]


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


def plan_frames(
    duration_s: float, first_seen_s: Sequence[float], max_frames: int
) -> list[FrameRun]:
    """The runs of moments whose frames are sent, at most `max_frames` in all.

    Every moment is the middle of a slice of its stretch of the clip, so frames never sit on
    the very first or last instant and two frames never share a slice.
    """
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    if duration_s <= 0:
        return [FrameRun(0.0, 1.0, 1, 1.0)]
    if not first_seen_s:
        return [_run(0.0, duration_s, max_frames)]
    start = max(0.0, min(first_seen_s) - FOCUS_BEFORE_S)
    end = min(duration_s, max(first_seen_s) + FOCUS_AFTER_S)
    outside = [(0.0, start), (end, duration_s)]
    if end <= start or sum(b - a for a, b in outside) <= 0:
        # A sighting at the very end, or a window covering the clip: nothing to weight.
        return [_run(0.0, duration_s, max_frames)]
    focus_count = (max_frames + 1) // 2
    before, after = _share(max_frames - focus_count, outside)
    runs = [_run(0.0, start, before), _run(start, end, focus_count), _run(end, duration_s, after)]
    return [run for run in runs if run.count]


def pick_frame_times(
    duration_s: float, first_seen_s: Sequence[float], max_frames: int
) -> list[float]:
    """The planned moments (seconds from the clip start), ascending."""
    runs = plan_frames(duration_s, first_seen_s, max_frames)
    return sorted(t for run in runs for t in run.times)


def extract_frames(
    path: Path, runs: Sequence[FrameRun], *, max_size: int, quality: int
) -> list[EncodedFrame]:
    """The frames nearest the planned moments, longest side at most `max_size`, as JPEG.

    Blocking. Moments that fall on the same frame give it once. A clip damaged or cut short
    gives the frames read before the damage; `VideoReadError` is raised when none can be read.
    """
    cores = os.cpu_count() or 1
    pieces = _split(runs, cores)
    # Each piece is decoded by FFmpeg with its share of the cores.
    threads = max(1, cores // max(1, len(pieces)))
    with ThreadPoolExecutor(max(1, len(pieces)), thread_name_prefix="vlm-frames") as pool:
        results = list(pool.map(lambda run: _read_run(path, run, max_size, threads), pieces))
    picked = {
        frame.time_s: frame for result in results if isinstance(result, list) for frame in result
    }
    errors = [result for result in results if isinstance(result, VideoReadError)]
    if not picked:
        raise errors[0] if errors else VideoReadError(f"{path}: no frame at the planned moments")
    return [_encode(picked[t], quality) for t in sorted(picked)]


def _run(start: float, end: float, count: int) -> FrameRun:
    step = (end - start) / count if count else 0.0
    return FrameRun(start + step / 2, step, count, end)


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


def _split(runs: Sequence[FrameRun], pieces: int) -> list[FrameRun]:
    """Halve the longest runs until there are `pieces` (one core each) or single moments.

    Decoding is the cost, and it is cheapest in one pass per run on a small CPU; on more
    cores, more pieces read in parallel win despite opening the file once per piece.
    """
    split = list(runs)
    while len(split) < pieces:
        longest = max(split, key=lambda run: run.count, default=None)
        if longest is None or longest.count < 2:
            break
        split.remove(longest)
        half = longest.count // 2
        middle = longest.first_s + (half - 0.5) * longest.step_s
        split.append(FrameRun(longest.first_s, longest.step_s, half, middle))
        split.append(
            FrameRun(
                longest.first_s + half * longest.step_s,
                longest.step_s,
                longest.count - half,
                longest.end_s,
            )
        )
    return split


def _read_run(
    path: Path, run: FrameRun, max_size: int, threads: int
) -> list[SampledFrame] | VideoReadError:
    sampled: list[SampledFrame] = []
    try:
        for frame in sample_frames(
            path,
            fps=1.0 / run.step_s,
            max_frames=run.count,
            start_s=run.first_s,
            end_s=run.end_s,
            fit=(max_size, max_size),
            pixel_format="bgr24",
            threads=threads,
        ):
            sampled.append(frame)
    except VideoReadError as exc:
        if not sampled:
            return exc
        logger.warning("%s; using the %d frames read before", exc, len(sampled))
    if not sampled:
        return []
    # For each planned moment, the frame nearest to it: the plan holds even where the
    # sampler's choice of frame for a moment lands one frame off.
    return [min(sampled, key=lambda frame: abs(frame.time_s - t)) for t in run.times]


def _encode(frame: SampledFrame, quality: int) -> EncodedFrame:
    ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoReadError(f"frame at {frame.time_s:.2f} s could not be encoded as JPEG")
    height, width = frame.image.shape[:2]
    return EncodedFrame(round(frame.time_s, 3), jpeg.tobytes(), width, height)
