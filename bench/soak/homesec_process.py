"""The `homesec run` process under test: its config, start, SIGKILL, stop, and /proc samples."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

_HOMESEC = Path(sys.executable).with_name("homesec")
_READY_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 90.0
_ORPHAN_GRACE_S = 5.0  # the kernel's parent-death signal is at once; reaping takes a moment


@dataclass(frozen=True)
class ResourceSample:
    """One look at the process through /proc."""

    at: float
    pid: int
    rss_kb: int
    fds: int
    children: int


class HomesecProcess:
    """`homesec run --config FILE` as a child process, its output appended to `log_file`."""

    def __init__(self, config_file: Path, env: dict[str, str], health_url: str) -> None:
        self.config_file = config_file
        self.log_file = config_file.with_name("homesec.log")
        self._env = env
        self._health_url = health_url
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.samples: list[ResourceSample] = []
        self.orphans: list[str] = []
        """Processes HomeSec started that outlived a SIGKILL of it."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start it and wait until its HTTP server answers /health (healthy or not)."""
        self._process = await asyncio.to_thread(self._spawn)
        self.starts += 1
        deadline = time.monotonic() + _READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"homesec exited with {self._process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(self._health_url)
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"homesec did not serve /health in {_READY_TIMEOUT_S} s")
                await asyncio.sleep(0.5)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as log:
            return subprocess.Popen(
                [str(_HOMESEC), "run", "--config", str(self.config_file)],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ensure_stopped(self) -> None:
        """Kill it if it still runs (the campaign was interrupted)."""
        if self._process is not None and self._process.poll() is None:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a power cut, the OOM killer). Whatever HomeSec
        started (detector workers, ffmpeg) must go with it: survivors are noted and killed."""
        assert self._process is not None
        started = descendants_of(self._process.pid)
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        deadline = time.monotonic() + _ORPHAN_GRACE_S
        while (alive := [p for p in started if p.alive()]) and time.monotonic() < deadline:
            time.sleep(0.1)
        for orphan in alive:
            self.orphans.append(orphan.describe())
            with contextlib.suppress(ProcessLookupError):
                os.kill(orphan.pid, signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self._process.wait, _STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            return -signal.SIGKILL

    async def sample_forever(self, every_s: float = 1.0) -> None:
        """Record RSS, open files and child processes of whichever process is running."""
        while True:
            pid = self.pid
            if pid is not None:
                sample = await asyncio.to_thread(_sample, pid)
                if sample is not None:
                    self.samples.append(sample)
            await asyncio.sleep(every_s)


def _sample(pid: int) -> ResourceSample | None:
    proc = Path("/proc") / str(pid)
    try:
        status = (proc / "status").read_text()
        if "\nState:\tZ" in status:
            return None
        rss = next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmRSS:")
        fds = sum(1 for _ in (proc / "fd").iterdir())
    except (OSError, StopIteration):
        return None
    return ResourceSample(time.monotonic(), pid, rss, fds, len(children_of(pid)))


@dataclass(frozen=True)
class ProcessRef:
    """A process, told apart from a later one with a reused pid by its start time."""

    pid: int
    started: str
    command: str

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat.split()[19] == self.started and stat.split()[0] != "Z"

    def describe(self) -> str:
        return f"{self.pid} {self.command}"


def descendants_of(pid: int) -> list[ProcessRef]:
    """Every process below `pid` now (children, their children...)."""
    found, todo = [], children_of(pid)
    while todo:
        child = todo.pop()
        stat = _stat(child)
        if stat is None:
            continue
        with contextlib.suppress(OSError):
            command = (Path("/proc") / str(child) / "cmdline").read_bytes()
            found.append(
                ProcessRef(
                    child,
                    stat.split()[19],
                    command.replace(b"\0", b" ")[:120].decode(errors="replace"),
                )
            )
        todo += children_of(child)
    return found


def _stat(pid: int) -> str | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :]


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (zombies included: they are leaks too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def processes_mentioning(text: str) -> list[int]:
    """Pids (not ours) whose command line contains `text`: leftovers after the run."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found
