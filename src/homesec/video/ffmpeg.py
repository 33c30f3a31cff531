"""The one ffmpeg launcher: which binary runs, how it is started, and that it is always reaped.

- The binary is the system's `ffmpeg` when one is on PATH (distribution builds carry the
  hardware decoders), else the static build shipped by the `imageio-ffmpeg` wheel, so a fresh
  set-up needs no manual step.
- Every process gets `-nostdin`, no stdin and its own session: a Ctrl-C in the terminal
  reaches HomeSec only, which then stops its ffmpeg processes in order (a recording is
  finished, not cut). Processes still running when the interpreter exits are killed, and
  one that HomeSec could not stop (killed itself) dies with it (`processes`).
- stderr is drained by a thread (a full pipe would freeze ffmpeg) and its last lines are
  kept for error messages. Command lines and error output are redacted before they are
  logged or raised: camera URLs carry `user:password@`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import re
import shlex
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO

from homesec.processes import dies_with_this_process
from homesec.telemetry import redact

logger = logging.getLogger(__name__)

_STDERR_LINES = 20
_COMPONENT_PREFIX = re.compile(r"^\[[\w:.-]+ @ 0x[0-9a-f]+\]\s*")
_running: set[FfmpegProcess] = set()
_running_lock = threading.Lock()


class FfmpegError(Exception):
    """ffmpeg could not do the job; the message is redacted and ends with ffmpeg's own words."""


@functools.cache
def ffmpeg_binary() -> str:
    """Path of the ffmpeg to run: the system one, else imageio-ffmpeg's."""
    system = shutil.which("ffmpeg")
    if system is not None:
        return system
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:  # a dependency: only a broken install gets here
        raise FfmpegError(
            "ffmpeg not found: install it (apt-get install ffmpeg) or the imageio-ffmpeg package"
        ) from exc


def command_line(args: Sequence[str]) -> list[str]:
    """The full command for ffmpeg arguments: quiet, never reading stdin."""
    return [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]


def run_ffmpeg(args: Sequence[str], *, timeout_s: float) -> str:
    """Run ffmpeg to completion and return its stdout; raise `FfmpegError` when it fails.

    A run past `timeout_s` is killed and reaped before the error is raised.
    """
    command = command_line(args)
    logger.debug("Running %s", redact(shlex.join(command)))
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
            start_new_session=True,
            preexec_fn=dies_with_this_process(),
        )
    except subprocess.TimeoutExpired:
        raise FfmpegError(f"ffmpeg took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise FfmpegError(f"cannot run ffmpeg: {exc}") from exc
    if done.returncode != 0:
        reason = _last_lines(done.stderr.decode(errors="replace"))
        raise FfmpegError(f"ffmpeg exited with code {done.returncode}: {reason}")
    return done.stdout.decode(errors="replace")


class FfmpegProcess:
    """A long-running ffmpeg. `stop()` (or the end of the interpreter) always reaps it."""

    def __init__(self, popen: subprocess.Popen[bytes], name: str) -> None:
        self._popen = popen
        self._name = name
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._drain = threading.Thread(
            target=self._drain_stderr, name=f"{name}:stderr", daemon=True
        )
        self._drain.start()

    @classmethod
    def start(
        cls,
        args: Sequence[str],
        *,
        name: str,
        stdout: bool = False,
        pass_fds: Sequence[int] = (),
        log_extra: Mapping[str, object] | None = None,
    ) -> FfmpegProcess:
        """Start ffmpeg with `args`; `stdout` makes its standard output readable as a pipe.

        `pass_fds` are descriptors the child inherits (for `pipe:N` outputs).
        """
        command = command_line(args)
        logger.debug("Starting %s: %s", name, redact(shlex.join(command)), extra=log_extra)
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=tuple(pass_fds),
                start_new_session=True,
                preexec_fn=dies_with_this_process(),
                bufsize=1 << 20,
            )
        except OSError as exc:
            raise FfmpegError(f"cannot run ffmpeg: {exc}") from exc
        process = cls(popen, name)
        with _running_lock:
            _running.add(process)
        return process

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def stdout(self) -> IO[bytes]:
        if self._popen.stdout is None:
            raise RuntimeError("started without stdout=True")
        return self._popen.stdout

    def poll(self) -> int | None:
        """The exit code once it has ended (and been reaped), else None."""
        code = self._popen.poll()
        if code is not None:
            self._forget()
        return code

    def error_output(self) -> str:
        """ffmpeg's last error lines, redacted (empty when it said nothing)."""
        return " | ".join(self._stderr)

    def stop(self, grace_s: float = 5.0) -> int:
        """Ask ffmpeg to finish its outputs (SIGINT), kill it after `grace_s`, reap it.

        stdout stays open: its reader drains it to the end, then closes it.
        """
        if self._popen.poll() is None:
            # SIGINT is ffmpeg's "q": it writes its trailers and closes its outputs.
            self._signal(signal.SIGINT)
            try:
                self._popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.info("%s did not stop within %g s; killing it", self._name, grace_s)
                self._signal(signal.SIGKILL)
                self._popen.wait()
        self._drain.join(timeout=grace_s)
        if self._popen.stderr is not None:
            self._popen.stderr.close()
        self._forget()
        return self._popen.returncode

    def _signal(self, signum: signal.Signals) -> None:
        # It may have ended on its own between the poll and here: nothing to signal then.
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(signum)

    def _drain_stderr(self) -> None:
        stderr = self._popen.stderr
        if stderr is None:
            return
        try:
            for raw in stderr:
                line = _plain(raw.decode(errors="replace"))
                if line:
                    self._stderr.append(line)
                    logger.debug("%s: %s", self._name, line)
        except (OSError, ValueError):  # closed by stop() while reading: nothing left to keep
            return

    def _forget(self) -> None:
        with _running_lock:
            _running.discard(self)


def _plain(line: str) -> str:
    """A line of ffmpeg output, redacted, without its "[h264 @ 0x5633...]" prefix."""
    return redact(_COMPONENT_PREFIX.sub("", line.strip()))


def _last_lines(text: str) -> str:
    lines = [_plain(line) for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_STDERR_LINES:]) or "no error output"


@atexit.register
def _kill_leftovers() -> None:
    """An interpreter that exits without stopping its sources leaves no ffmpeg behind."""
    with _running_lock:
        leftovers = list(_running)
    for process in leftovers:
        process.stop(grace_s=1.0)
