"""Child processes that never outlive HomeSec, even when it is killed with SIGKILL.

Every process HomeSec starts goes through here: the detector's worker pool (`worker_pool`)
and ffmpeg (`subprocess` with `preexec_fn=dies_with_this_process()`). On Linux each child
asks the kernel for a parent-death signal (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), so it is
killed the moment HomeSec ends, however it ends; no clean-up code has to run for that.

- A parent that died before the child's request would never be reported: the child checks
  `getppid()` right after it and ends itself when its parent is already gone.
- The kernel ties the request to the *thread* that started the child, not to the process:
  start children from threads that live as long as they do (the event loop's, asyncio's
  default executor's, or the one that waits for the child), never from a short-lived one.
- multiprocessing's resource tracker needs nothing: it exits when the last holder of its
  pipe is gone, HomeSec and its workers.
- Worker processes also switch off the dependencies' telemetry (`local_first`).
- On other systems nothing is asked; a graceful stop still ends every child.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from homesec.local_first import switch_off_telemetry

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Looked up once in the parent: a child between fork and exec should run as little as it can.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent(parent_pid: int) -> None:
    """In a child process: be killed with SIGKILL when the process `parent_pid` ends."""
    if _prctl is None:
        return
    if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent_pid:  # it ended before the request: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)


def dies_with_this_process() -> Callable[[], None]:
    """A `preexec_fn` for `subprocess`: the child is killed when this process ends."""
    return functools.partial(die_with_parent, os.getpid())


def worker_pool(
    max_workers: int, initializer: Callable[..., object], initargs: tuple[Any, ...]
) -> ProcessPoolExecutor:
    """A pool of worker processes that end with this one; each runs `initializer` first.

    Workers are spawned, not forked: forking a process that runs an event loop and other
    threads can leave locks held in the child; spawn also behaves the same on macOS.
    """
    return ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start_worker(
    parent_pid: int, initializer: Callable[..., object], initargs: tuple[Any, ...]
) -> None:
    die_with_parent(parent_pid)
    switch_off_telemetry()
    initializer(*initargs)
