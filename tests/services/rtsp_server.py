"""Real RTSP cameras for tests: ../shared/tools/rtsp_serve.py (GStreamer) on loopback.

- `make_rtsp_camera(video, user=None, password=None)`: a camera looping `video` in real time
  (H.264, a keyframe every second) on a free port; it can `vanish()` (SIGKILL, as a camera
  losing power), `start()` again on the same port, `freeze()` (SIGSTOP: its sockets stay
  open, nothing flows) and `thaw()`. Every camera is killed at teardown.
- Footage made once per session from ../shared/media with ffmpeg: `still_footage` (one frame
  of the empty lawn, frozen), `walk_in_footage` (a frozen frame for 4 s, people walking for
  4 s, frozen again for 4 s), `moving_box_footage` (a white box moving in the left half of a
  gray picture).
- `ffmpeg_children()`: ffmpeg processes (running or zombie) whose parent is this process.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.services.shared_files import SHARED_DIR

SERVE_SCRIPT = SHARED_DIR / "tools" / "rtsp_serve.py"
SYSTEM_PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"
_READY_TIMEOUT_S = 60.0  # the first serving of a clip transcodes it once


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class RTSPCamera:
    """One rtsp_serve.py process serving a looping clip at `url`."""

    def __init__(
        self,
        video: Path,
        *,
        user: str | None = None,
        password: str | None = None,
        fps: int = 10,
        width: int = 640,
    ) -> None:
        self.video = video
        self.port = _free_port()
        self._options = ["--port", str(self.port), "--fps", str(fps), "--width", str(width)]
        if user:
            self._options += ["--user", user, "--password", password or ""]
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://{HOST}:{self.port}/cam"

    def url_with(self, user: str, password: str) -> str:
        return f"rtsp://{user}:{password}@{HOST}:{self.port}/cam"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVE_SCRIPT), str(self.video), *self._options],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], _READY_TIMEOUT_S)
        line = self._process.stdout.readline() if ready else ""
        if not line.startswith("rtsp://"):
            self.vanish()
            raise RuntimeError(f"rtsp_serve.py did not start for {self.video}")

    def vanish(self) -> None:
        """The camera disappears at once (power cut): SIGKILL, nothing said to clients."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def freeze(self) -> None:
        """The camera hangs: connections stay open, nothing flows."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGCONT)
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


class MakeCamera(Protocol):
    def __call__(
        self, video: Path, *, user: str | None = None, password: str | None = None
    ) -> RTSPCamera: ...


@pytest.fixture
def make_rtsp_camera() -> Iterator[MakeCamera]:
    """Start RTSP cameras; all of them are stopped at teardown."""
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("ffmpeg") is None:
        pytest.fail("RTSP tests need /usr/bin/python3 and ffmpeg: run scripts/bootstrap.sh --test")
    cameras: list[RTSPCamera] = []

    def make(video: Path, *, user: str | None = None, password: str | None = None) -> RTSPCamera:
        camera = RTSPCamera(video, user=user, password=password)
        cameras.append(camera)
        camera.start()
        return camera

    yield make
    for camera in cameras:
        camera.close()


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


_ENCODE = ["-r", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p"]


@pytest.fixture(scope="session")
def rtsp_footage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rtsp_footage")


@pytest.fixture(scope="session")
def still_footage(rtsp_footage_dir: Path, empty_scene_clip: Path) -> Path:
    """3 s of one frame of the empty lawn: nothing moves at all."""
    path = rtsp_footage_dir / "still.mp4"
    frozen = "trim=end_frame=1,tpad=stop_duration=3:stop_mode=clone,scale=640:-2"
    _ffmpeg("-i", str(empty_scene_clip), "-vf", frozen, *_ENCODE, str(path))
    return path


@pytest.fixture(scope="session")
def walk_in_footage(rtsp_footage_dir: Path, media_dir: Path) -> Path:
    """4 s of a frozen frame, 4 s of people walking (vtest from 10 s), 4 s frozen again."""
    return make_walk_in_footage(media_dir, rtsp_footage_dir / "walk_in.mp4")


def make_walk_in_footage(media_dir: Path, path: Path) -> Path:
    """Write the walk-in footage (see `walk_in_footage`) to `path`."""
    source = ["-ss", "10", "-t", "4", "-i", str(media_dir / "vtest_h264.mp4")]
    frozen_ends = "tpad=start_duration=4:stop_duration=4:start_mode=clone:stop_mode=clone"
    _ffmpeg(*source, "-vf", f"{frozen_ends},scale=640:-2", *_ENCODE, str(path))
    return path


@pytest.fixture(scope="session")
def moving_box_footage(rtsp_footage_dir: Path) -> Path:
    """6 s of a 60x120 white box sliding along the left half of a gray 640x360 picture."""
    path = rtsp_footage_dir / "moving_box.mp4"
    background = ["-f", "lavfi", "-i", "color=c=gray:s=640x360:r=10:d=6"]
    box = ["-f", "lavfi", "-i", "color=c=white:s=60x120:r=10"]
    slide = "[0][1]overlay=x='40+mod(t*80\\,200)':y=120:shortest=1"
    _ffmpeg(*background, *box, "-filter_complex", slide, *_ENCODE, str(path))
    return path


def ffmpeg_children() -> list[int]:
    """Pids of ffmpeg processes, running or not yet reaped, started by this process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")".
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == os.getpid() and comm.startswith("ffmpeg"):
                pids.append(int(entry.name))
    return pids
