"""The way of each detect-stream frame: motion verdict, clip decision, recorder.

One `MotionRecording` per connection: a new connection starts with a fresh background model
and no clip running (the recorder finished the last one when the old connection ended).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from homesec.plugins.sources.rtsp.config import RTSPSourceConfig
from homesec.plugins.sources.rtsp.motion import (
    EndClip,
    GrayFrame,
    MotionDetector,
    MotionTrigger,
    RotateClip,
    StartClip,
)
from homesec.plugins.sources.rtsp.recorder import ClipRecorder

logger = logging.getLogger(__name__)


class MotionRecording:
    """Feeds one connection's frames to motion detection and its decisions to the recorder."""

    def __init__(
        self, config: RTSPSourceConfig, recorder: ClipRecorder, log_extra: Mapping[str, object]
    ) -> None:
        self._detector = MotionDetector(config.motion)
        self._trigger = MotionTrigger(
            pre_roll_s=config.pre_roll_s,
            stop_delay_s=config.stop_delay_s,
            max_clip_s=config.max_clip_s,
            min_frames=config.motion.min_motion_frames,
        )
        self._recorder = recorder
        self._log_extra = log_extra

    def on_frame(self, frame: GrayFrame, now: float) -> None:
        """Judge the frame seen at `now` (unix seconds) and act on the verdict."""
        match self._trigger.update(now, self._detector.detect(frame).motion):
            case StartClip(motion_start=start):
                logger.info("Motion: recording", extra=self._log_extra)
                self._recorder.start_clip(start)
            case EndClip(last_motion=last):
                logger.info("Motion ended: finishing the clip", extra=self._log_extra)
                self._recorder.end_clip(last)
            case RotateClip():
                logger.info("Clip reached max_clip_s: going on in a new one", extra=self._log_extra)
                self._recorder.rotate_clip()
            case None:
                pass
