"""Footage where people appear after an empty scene: live early detection tests and the
latency bench serve it as an RTSP camera (`tests/services/rtsp_server.py`), looping.

`empty_s` seconds of the empty lawn (backyard_1700000100.mp4), then `person_s` seconds of
the scene with people from its first frame (front_door_1700000000.mp4): the first frame of
the second part is the moment people appear. Both parts are scaled to one size and rate.
`is_people_scene(frame)` tells the two parts apart on a decoded frame, for a watcher that
needs to know when the people came on the wire.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

EMPTY_SCENE = "backyard_1700000100.mp4"
PEOPLE_SCENE = "front_door_1700000000.mp4"
_THUMB = (32, 18)


def make_appearing_person_footage(
    media_dir: Path, path: Path, *, empty_s: float, person_s: float, fps: int = 10
) -> Path:
    """Write the footage to `path` (H.264 MP4, 640 pixels wide) and return it."""
    parts = "".join(f"[{index}:v]fps={fps},scale=640:360,setsar=1[p{index}];" for index in range(2))
    inputs = ["-t", f"{empty_s:g}", "-i", str(media_dir / EMPTY_SCENE)]
    inputs += ["-t", f"{person_s:g}", "-i", str(media_dir / PEOPLE_SCENE)]
    joined = ["-filter_complex", f"{parts}[p0][p1]concat=n=2:v=1:a=0"]
    encoding = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", str(fps), str(path)]
    quiet = ["-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(["ffmpeg", *quiet, *inputs, *joined, *encoding], check=True)
    return path


class SceneTeller:
    """Says which part of the footage a decoded frame (BGR) belongs to: nearest reference."""

    def __init__(self, media_dir: Path) -> None:
        self._empty = _thumbnail(_first_frame(media_dir / EMPTY_SCENE))
        self._people = _thumbnail(_first_frame(media_dir / PEOPLE_SCENE))

    def is_people_scene(self, frame: NDArray[np.uint8]) -> bool:
        thumb = _thumbnail(frame)
        return bool(np.abs(thumb - self._people).mean() < np.abs(thumb - self._empty).mean())


def _first_frame(video: Path) -> NDArray[np.uint8]:
    capture = cv2.VideoCapture(str(video))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise RuntimeError(f"cannot read {video}")
    return np.asarray(frame, dtype=np.uint8)


def _thumbnail(frame: NDArray[np.uint8]) -> NDArray[np.float32]:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
