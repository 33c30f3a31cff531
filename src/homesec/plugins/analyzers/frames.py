"""The frames a VLM sees: which moments of a clip to pick, and those frames as small JPEGs.

`plan_frames` decides where to look: when the object filter saw something, half of the
frames go to a window around its first sightings (the moment that made the clip worth
analysing) and the rest are spread over the remainder of the clip for context; with no
sighting, all frames are spread evenly. The plan is a few evenly spaced runs (before the
window, the window, after it); each moment is the middle of its slice of the run. It is
pure, so an eval or a test can check it (`pick_frame_times` lists its moments).

`extract_frames` reads them with the shared sampler (`homesec.video.sampler`). A keyframe
decodes on its own while any other frame needs every frame back to the keyframe before it,
so `snap_to_keyframes` first moves each moment onto the nearest keyframe inside its slice
(within half the run's step: the spread and the weighting hold); only moments with no
keyframe that close (long-GOP cameras, a dense window) are decoded exactly. The reads are
split into passes that never decode a frame twice, run in parallel threads (PyAV and OpenCV
release the GIL while decoding, scaling and encoding), which also encode the JPEGs. It
blocks: call it in a worker thread.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2

from homesec.video.clip import VideoReadError
from homesec.video.sampler import SampledFrame, keyframe_times, sample_moments

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
class Moment:
    """A moment whose frame is sent: a planned one, or the keyframe it was moved onto."""

    time_s: float
    on_keyframe: bool


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
    outside_s = start + (duration_s - end)
    if end <= start or outside_s <= 0:
        # A sighting at the very end, or a window covering the clip: nothing to weight.
        return [_run(0.0, duration_s, max_frames)]
    focus_count = (max_frames + 1) // 2
    rest = max_frames - focus_count
    # The rest in proportion to the time before and after the window, rounded half up.
    before = math.floor(rest * start / outside_s + 0.5)
    runs = [
        _run(0.0, start, before),
        _run(start, end, focus_count),
        _run(end, duration_s, rest - before),
    ]
    return [run for run in runs if run.count]


def pick_frame_times(
    duration_s: float, first_seen_s: Sequence[float], max_frames: int
) -> list[float]:
    """The planned moments (seconds from the clip start), ascending."""
    runs = plan_frames(duration_s, first_seen_s, max_frames)
    return sorted(t for run in runs for t in run.times)


def snap_to_keyframes(runs: Sequence[FrameRun], keyframes_s: Sequence[float]) -> list[Moment]:
    """The planned moments, each moved onto the nearest keyframe within half its run's step.

    Half a step keeps a moment inside its own slice of the clip. A keyframe serves one moment
    only; a moment with no free keyframe that close stays where it was planned. Ascending.
    """
    free = sorted(keyframes_s)
    moments = []
    for run in runs:
        for time_s in run.times:
            nearest = min(_neighbours(free, time_s), key=lambda k: abs(k - time_s), default=None)
            if nearest is not None and abs(nearest - time_s) <= run.step_s / 2:
                free.remove(nearest)
                moments.append(Moment(nearest, on_keyframe=True))
            else:
                moments.append(Moment(time_s, on_keyframe=False))
    return sorted(moments, key=lambda moment: moment.time_s)


def extract_frames(
    path: Path, runs: Sequence[FrameRun], *, max_size: int, quality: int
) -> list[EncodedFrame]:
    """The frames at the planned moments (or the keyframes they moved onto), as JPEG.

    The longest side is at most `max_size`. Blocking. Moments that fall on the same frame give
    it once. A clip damaged or cut short gives the frames read before the damage;
    `VideoReadError` is raised when none can be read.
    """
    try:
        keyframes = keyframe_times(path)
    except VideoReadError as exc:  # read every moment exactly; the passes report the damage
        logger.debug("No keyframe times: %s", exc)
        keyframes = []
    cores = os.cpu_count() or 1
    passes = _passes(snap_to_keyframes(runs, keyframes), keyframes, cores)
    # Each pass is decoded by FFmpeg with its share of the cores.
    threads = max(1, cores // max(1, len(passes)))
    workers = max(1, min(cores, len(passes)))
    with ThreadPoolExecutor(workers, thread_name_prefix="vlm-frames") as pool:
        results = list(
            pool.map(lambda read: _read_pass(path, read, max_size, quality, threads), passes)
        )
    picked = {
        frame.time_s: frame for result in results if isinstance(result, list) for frame in result
    }
    errors = [result for result in results if isinstance(result, VideoReadError)]
    if not picked:
        raise errors[0] if errors else VideoReadError(f"{path}: no frame at the planned moments")
    return [picked[t] for t in sorted(picked)]


def _run(start: float, end: float, count: int) -> FrameRun:
    step = (end - start) / count if count else 0.0
    return FrameRun(start + step / 2, step, count, end)


@dataclass(frozen=True)
class _Pass:
    """Moments read in one pass of the sampler."""

    times: list[float]
    keyframes_only: bool


def _neighbours(ordered: Sequence[float], time_s: float) -> Sequence[float]:
    """The values of `ordered` on either side of `time_s`."""
    at = bisect.bisect_left(ordered, time_s)
    return ordered[max(0, at - 1) : at + 1]


def _passes(moments: Sequence[Moment], keyframes: Sequence[float], cores: int) -> list[_Pass]:
    """Passes that decode no frame twice, the longest first (the pool starts them in order).

    The moments of a group of pictures that needs more than its keyframe are read in one
    pass, from that keyframe on; keyframes wanted alone are shared out over the cores.
    Without keyframe times, the moments are shared out over the cores as they are.
    """
    if not keyframes:
        times = [moment.time_s for moment in moments]
        return [_Pass(chunk, keyframes_only=False) for chunk in _chunks(times, cores)]
    groups: dict[int, list[Moment]] = {}
    for moment in moments:
        # The keyframe at or before the moment; -1: before the first keyframe.
        groups.setdefault(bisect.bisect_right(keyframes, moment.time_s) - 1, []).append(moment)
    alone: list[float] = []
    chains: list[tuple[float, list[float]]] = []  # (seconds decoded, moments)
    for index, group in groups.items():
        times = [moment.time_s for moment in group]
        if len(group) == 1 and group[0].on_keyframe:
            alone.append(times[0])
        else:
            chains.append((times[-1] - (keyframes[index] if index >= 0 else 0.0), times))
    chains.sort(key=lambda chain: chain[0], reverse=True)
    return [_Pass(times, keyframes_only=False) for _, times in chains] + [
        _Pass(chunk, keyframes_only=True) for chunk in _chunks(alone, cores)
    ]


def _chunks(times: list[float], count: int) -> list[list[float]]:
    """`times` cut into at most `count` runs of about equal length."""
    count = max(1, min(count, len(times)))
    bounds = [round(i * len(times) / count) for i in range(count + 1)]
    return [times[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _read_pass(
    path: Path, read: _Pass, max_size: int, quality: int, threads: int
) -> list[EncodedFrame] | VideoReadError:
    sampled: list[SampledFrame] = []
    try:
        for frame in sample_moments(
            path,
            read.times,
            keyframes_only=read.keyframes_only,
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
    # For each moment, the frame nearest to it: the plan holds even where the sampler's
    # choice of frame for a moment lands one frame off.
    nearest = {
        frame.time_s: frame
        for frame in (min(sampled, key=lambda f: abs(f.time_s - t)) for t in read.times)
    }
    return [_encode(frame, quality) for frame in nearest.values()]


def _encode(frame: SampledFrame, quality: int) -> EncodedFrame:
    ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoReadError(f"frame at {frame.time_s:.2f} s could not be encoded as JPEG")
    height, width = frame.image.shape[:2]
    return EncodedFrame(round(frame.time_s, 3), jpeg.tobytes(), width, height)
