"""Running `rtsp` sources against the test cameras, through the public plugin API only."""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import pytest

from homesec.interfaces import ClipSource
from homesec.models.clip import Clip
from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_source
from homesec.video.sampler import sample_frames
from tests.services.rtsp_server import ffmpeg_children

# Short clips and quick reactions keep the suite fast; real time is still real time.
FAST = {
    "stop_delay_s": 1.0,
    "frame_timeout_s": 2.0,
    "reconnect_initial_s": 0.5,
    "reconnect_max_s": 4.0,
    "hwaccel": "off",
}
_RETRY_RE = re.compile(r"reconnecting in (?P<delay>[\d.]+) s")


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class RunningSource:
    """A started source and the clips it handed on."""

    source: ClipSource
    recordings_dir: Path
    clips: list[Clip] = field(default_factory=list)

    async def wait_for_clips(self, count: int, timeout: float) -> list[Clip]:
        await wait_until(lambda: len(self.clips) >= count, timeout, f"{count} clip(s)")
        return self.clips[:count]


class StartSource(Protocol):
    async def __call__(self, url: str, camera: str = "cam", **config: Any) -> RunningSource: ...


@pytest.fixture
async def start_rtsp_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartSource]:
    """Start `rtsp` sources (FAST settings unless overridden); stop them at teardown and
    check that no ffmpeg process is left behind."""
    running: list[RunningSource] = []

    async def start(url: str, camera: str = "cam", **config: Any) -> RunningSource:
        env_name = f"HOMESEC_TEST_RTSP_URL_{len(running)}"
        monkeypatch.setenv(env_name, url)
        recordings_dir = tmp_path / camera
        raw = {
            "camera_name": camera,
            "rtsp_url_env": env_name,
            "recordings_dir": str(recordings_dir),
            **FAST,
            **config,
        }
        started = RunningSource(load_source("rtsp", raw), recordings_dir)
        started.source.register_callback(started.clips.append)
        started.source.use_namer(ClipNames())
        await started.source.start()
        running.append(started)
        return started

    yield start
    for started in running:
        await started.source.aclose()
    assert ffmpeg_children() == []


def retry_delays(records: list[logging.LogRecord], camera: str) -> list[float]:
    """The waits a camera's source announced before each reconnection attempt."""
    delays = []
    for record in records:
        match = _RETRY_RE.search(record.getMessage())
        if match and getattr(record, "camera_name", None) == camera:
            delays.append(float(match["delay"]))
    return delays


def activity(path: Path) -> list[tuple[float, float]]:
    """(time, share of pixels that changed since the previous frame) for each frame."""
    result = []
    previous = None
    for frame in sample_frames(path, fps=10.0, fit=(320, 240)):
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        if previous is not None:
            changed = cv2.absdiff(gray, previous) > 25
            result.append((frame.time_s, float(np.count_nonzero(changed)) / changed.size))
        previous = gray
    return result


def top_level_atoms(path: Path) -> list[str]:
    """The MP4's top-level boxes in file order (faststart: `moov` before `mdat`)."""
    atoms = []
    with path.open("rb") as mp4:
        while header := mp4.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:  # a 64-bit size follows the type
                size = struct.unpack(">Q", mp4.read(8))[0] - 8
            atoms.append(kind.decode("latin-1"))
            if size == 0:  # the box runs to the end of the file
                break
            mp4.seek(size - 8, 1)
    return atoms
