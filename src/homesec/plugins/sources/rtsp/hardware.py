"""Hardware decoding of the detect stream: which accelerators to try, and the fall-back.

`ffmpeg -hwaccels` lists what the binary was built with, not what the machine has, so "auto"
keeps only the accelerators whose device is present. A connection made with an accelerator
that ends without a single frame is retried at once in software; when software decoding
then works, that accelerator is given up for the camera (logged once). When software fails
too, the camera is the problem, and the accelerator gets another chance next time.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from homesec.video.ffmpeg import FfmpegError, run_ffmpeg

logger = logging.getLogger(__name__)

HWACCEL_AUTO = "auto"
HWACCEL_OFF = "off"
# Tried in this order by "auto": dedicated decoders first, generic APIs after.
_AUTO_ORDER = ("cuda", "qsv", "vaapi", "videotoolbox")


def _has_render_node() -> bool:
    dri = Path("/dev/dri")
    return dri.is_dir() and any(dri.glob("renderD*"))


_DEVICE_PRESENT: dict[str, Callable[[], bool]] = {
    "cuda": lambda: Path("/dev/nvidiactl").exists(),
    "qsv": _has_render_node,
    "vaapi": _has_render_node,
    "videotoolbox": lambda: sys.platform == "darwin",
}


@functools.cache
def compiled_hwaccels() -> frozenset[str]:
    """The accelerators this ffmpeg was built with (empty when it cannot tell)."""
    try:
        listing = run_ffmpeg(["-hwaccels"], timeout_s=15.0)
    except FfmpegError as exc:
        logger.warning("Cannot list ffmpeg's hardware decoders (%s); decoding in software", exc)
        return frozenset()
    # The first line is the heading "Hardware acceleration methods:".
    return frozenset(line.strip() for line in listing.splitlines()[1:] if line.strip())


def decoder_candidates(setting: str) -> list[str | None]:
    """Accelerators to try for `setting` ("auto", "off" or a name), software (None) last."""
    if setting == HWACCEL_OFF:
        return [None]
    compiled = compiled_hwaccels()
    if setting == HWACCEL_AUTO:
        usable = [name for name in _AUTO_ORDER if name in compiled and _DEVICE_PRESENT[name]()]
        return [*usable, None]
    if setting not in compiled:
        logger.warning("This ffmpeg has no %r hardware decoder; decoding in software", setting)
        return [None]
    return [setting, None]


class DecoderChoice:
    """The accelerator for the next connection of one camera."""

    def __init__(self, candidates: list[str | None], camera_name: str) -> None:
        self._candidates = candidates
        self._index = 0
        self._camera_name = camera_name

    @property
    def current(self) -> str | None:
        """The accelerator to use, None for software."""
        return self._candidates[self._index]

    def connection_ended(self, got_frames: bool) -> bool:
        """Learn from a finished connection; True when the next one should start at once."""
        if got_frames:
            if self._index > 0:
                given_up = ", ".join(str(name) for name in self._candidates[: self._index])
                logger.info(
                    "Hardware decoding (%s) does not work for this camera; using %s",
                    given_up,
                    self.current or "software",
                    extra={"camera_name": self._camera_name},
                )
                self._candidates = self._candidates[self._index :]
                self._index = 0
            return False
        if self.current is not None:
            self._index += 1
            return True
        self._index = 0
        return False
