"""`homesec run` killed with SIGKILL leaves no process behind: not the detector's workers,
not multiprocessing's resource tracker, not a camera's ffmpeg."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from homesec.models.enums import ClipStatus
from tests.e2e.helpers import drop_clip, wait_for_state
from tests.fakes.builders import config_dict
from tests.services.rtsp_server import MakeCamera

REPO = Path(__file__).parents[2]
CLIP_ID = "front_door_1700000050.mp4"

# Command-line marks of the children expected: detector workers, the resource tracker, ffmpeg.
_KINDS = ("spawn_main", "resource_tracker", "ffmpeg")

Process = tuple[int, int]
"""A process as (pid, start time in clock ticks): a pid reused later is another process."""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, parent pid and start time of a process; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, by pid, with its command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError):
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        pending += children.get(pid, [])
    return found


def _alive(processes: set[Process]) -> set[Process]:
    """Those still running (a zombie is dead: it holds no memory and waits to be reaped)."""
    alive = set()
    for pid, started in processes:
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[0] != "Z":
            alive.add((pid, started))
    return alive


def _identified(pids: dict[int, str]) -> set[Process]:
    return {(pid, stat[2]) for pid in pids if (stat := _stat(pid)) is not None}


async def test_sigkill_of_homesec_run_leaves_no_process_behind(
    tmp_path: Path,
    person_clip: Path,
    models_dir: Path,
    still_footage: Path,
    make_rtsp_camera: MakeCamera,
    postgres_dsn: str,
) -> None:
    # Given `homesec run` with the YOLO detector's worker pool and an RTSP camera's ffmpeg
    camera = make_rtsp_camera(still_footage)
    raw = config_dict(
        tmp_path,
        state_store={"dsn_env": "HOMESEC_TEST_DSN"},
        filter={
            "backend": "yolo",
            "config": {"model": str(models_dir / "yolox_nano.onnx"), "max_workers": 2},
        },
    )
    raw["cameras"].append(
        {
            "name": "garden",
            "source": {
                "backend": "rtsp",
                "config": {
                    "rtsp_url_env": "HOMESEC_TEST_RTSP_URL",
                    "recordings_dir": str(tmp_path / "recordings"),
                    "hwaccel": "off",
                },
            },
        }
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "HOMESEC_TEST_DSN": postgres_dsn, "HOMESEC_TEST_RTSP_URL": camera.url}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.run_homesec", "run", "--config", str(config_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "homesec.log").open("ab"),
    )
    tracked: set[Process] = set()
    try:
        # And a clip the detector has checked, with the camera's ffmpeg running
        drop_clip(person_clip, Path(raw["cameras"][0]["source"]["config"]["watch_dir"]), CLIP_ID)
        await wait_for_state(postgres_dsn, CLIP_ID, ClipStatus.DONE, timeout=60)
        for _ in range(300):
            started = _descendants(process.pid)
            if all(any(kind in c for c in started.values()) for kind in _KINDS):
                break
            await asyncio.sleep(0.1)
        assert all(any(kind in c for c in started.values()) for kind in _KINDS), started
        tracked = _identified(started)

        # When the service is killed with SIGKILL
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        # Then within a few seconds none of the processes it started is left
        for _ in range(50):
            if not _alive(tracked):
                break
            await asyncio.sleep(0.1)
        left = {pid: started[pid] for pid, _ in _alive(tracked)}
        assert left == {}, f"still running after the kill: {left}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid, _ in _alive(tracked):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
