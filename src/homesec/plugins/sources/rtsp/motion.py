"""Motion in the detect stream: what changed in a frame, and when a clip starts, goes on, ends.

`MotionDetector` compares each small grayscale frame (halved again: motion needs no detail)
with a background model, a running average of the last second or so, that absorbs gradual
light changes and things that stop moving, but not a person walking. Changed pixels are
grouped into blobs; blobs too small are noise, and a change over most of the picture is a
light switch, not motion.

`MotionTrigger` turns per-frame verdicts into clip decisions, with times in unix seconds:
start after a few motion frames in a row, extend on every motion frame (re-trigger), end
after `stop_delay_s` without motion, and rotate to a new clip at `max_clip_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from homesec.plugins.sources.rtsp.config import MotionConfig

GrayFrame = NDArray[np.uint8]

_DILATE_KERNEL = np.ones((3, 3), np.uint8)
_AREA = cv2.INTER_AREA


class MotionDetector:
    """Finds motion in a stream of grayscale frames (not thread-safe: one per stream)."""

    def __init__(self, config: MotionConfig) -> None:
        # OpenCV's worker threads cost more in wake-ups than they save on frames this small
        # (measured: an eighth of a camera's CPU); cameras already run in parallel, a thread
        # each. Process-wide, which suits the other users too (JPEG encoding, a resize).
        cv2.setNumThreads(1)
        self._config = config
        self._background: NDArray[np.float32] | None = None
        self._watched: GrayFrame | None = None  # 255 where motion counts, 0 in masks
        self._watched_px = 0

    def detect(self, frame: GrayFrame) -> bool:
        """Whether `frame` shows motion against the background, which then learns from it."""
        # Half size: a quarter of the work in every step after this one, and averaging 2x2
        # pixels already evens out sensor noise, so the blur can stay small.
        height, width = frame.shape
        half = cv2.resize(frame, (max(1, width // 2), max(1, height // 2)), None, 0, 0, _AREA)
        size = self._config.blur_px
        # A uint8 input gives a uint8 output; the stubs' return types cover every depth.
        blurred = cast(GrayFrame, cv2.GaussianBlur(half, (size, size), 0))
        if self._background is None or self._background.shape != blurred.shape:
            # First frame, or the camera changed resolution: nothing to compare with yet.
            self._reset(blurred)
            return False
        diff = cv2.absdiff(blurred, cv2.convertScaleAbs(self._background))
        cv2.accumulateWeighted(blurred, self._background, self._config.background_alpha)
        _, changed = cv2.threshold(diff, self._config.pixel_threshold, 255, cv2.THRESH_BINARY)
        if self._watched is not None:
            changed = cv2.bitwise_and(changed, self._watched)
        if cv2.countNonZero(changed) > self._config.max_changed_area * self._watched_px:
            # Lights on, IR switch, a cloud: the whole scene changed, nobody moved.
            self._background = blurred.astype(np.float32)
            return False
        # Joins the parts of one moving body into one blob before blobs are sized.
        changed = cv2.dilate(changed, _DILATE_KERNEL, iterations=2)
        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_blob = self._config.min_contour_area * self._watched_px
        areas = (cv2.contourArea(contour) for contour in contours)
        kept = sum(area for area in areas if area >= min_blob)
        share = kept / self._watched_px if self._watched_px else 0.0
        return share >= self._config.min_changed_area

    def _reset(self, blurred: GrayFrame) -> None:
        self._background = blurred.astype(np.float32)
        height, width = blurred.shape
        self._watched = _watched_area(self._config, width, height)
        self._watched_px = (
            width * height if self._watched is None else cv2.countNonZero(self._watched)
        )


def _watched_area(config: MotionConfig, width: int, height: int) -> GrayFrame | None:
    if not config.masks:
        return None
    watched = np.full((height, width), 255, np.uint8)
    polygons = [
        np.array([(round(x * width), round(y * height)) for x, y in mask], np.int32)
        for mask in config.masks
    ]
    cv2.fillPoly(watched, polygons, 0)
    return watched


@dataclass(frozen=True)
class StartClip:
    """Motion began at `motion_start`: record from `pre_roll_s` before it."""

    motion_start: float


@dataclass(frozen=True)
class EndClip:
    """No motion for `stop_delay_s`: end the clip once it holds `last_motion`."""

    last_motion: float


@dataclass(frozen=True)
class RotateClip:
    """The clip reached `max_clip_s` while motion goes on: end it now, go on in a new one."""


ClipDecision = StartClip | EndClip | RotateClip


class MotionTrigger:
    """Clip boundaries from per-frame motion verdicts (pure: the caller gives the time)."""

    def __init__(
        self, *, pre_roll_s: float, stop_delay_s: float, max_clip_s: float, min_frames: int
    ) -> None:
        self._pre_roll_s = pre_roll_s
        self._stop_delay_s = stop_delay_s
        self._max_clip_s = max_clip_s
        self._min_frames = min_frames
        self._streak = 0
        self._streak_start = 0.0
        self._clip_start: float | None = None  # None: no clip running
        self._last_motion = 0.0

    def update(self, now: float, motion: bool) -> ClipDecision | None:
        """Take the verdict on the frame seen at `now`; return what the recorder must do."""
        if motion:
            if self._streak == 0:
                self._streak_start = now
            self._streak += 1
        else:
            self._streak = 0
        if self._clip_start is None:
            if self._streak < self._min_frames:
                return None
            self._clip_start = self._streak_start - self._pre_roll_s
            self._last_motion = now
            return StartClip(self._streak_start)
        if motion:
            self._last_motion = now
        if now - self._last_motion >= self._stop_delay_s:
            self._clip_start = None
            return EndClip(self._last_motion)
        if now - self._clip_start >= self._max_clip_s:
            self._clip_start = now
            return RotateClip()
        return None
