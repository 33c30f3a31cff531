"""One run at a time: whoever asks while a run is going on joins it instead of starting another.

- `SingleRun`: one background task (a prune pass, a replay pass, a journal's writer). A start
  while it runs is dropped: the running pass covers it, or picks up the newer work itself.
- `SingleFlight`: one call per key (a clip's load, a file's download). Callers of a key whose
  call is on its way get that call's outcome; the call is shielded, so one caller giving up
  does not cancel it for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleRun:
    """At most one run of a background task at a time."""

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, run: Callable[[], Coroutine[Any, Any, object]], name: str) -> bool:
        """Start `run()` unless a run is going on (then `run` is not called); True if started."""
        if self.running:
            return False
        self._task = asyncio.create_task(run(), name=name)
        return True

    async def wait(self) -> None:
        """Until no run is going on (one started meanwhile included), whatever their outcome.

        Cancelling the waiter does not cancel the run.
        """
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])


class SingleFlight(Generic[K, T]):
    """At most one call per key at a time; callers of the same key share its outcome."""

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[T]] = {}

    def __contains__(self, key: K) -> bool:
        """Whether a call of `key` is on its way."""
        return key in self._calls

    async def call(self, key: K, call: Callable[[], Coroutine[Any, Any, T]], name: str) -> T:
        """The outcome of the call of `key` on its way, else of `call()` started now."""
        task = self._calls.get(key)
        if task is None:
            task = asyncio.create_task(call(), name=name)
            self._calls[key] = task
            task.add_done_callback(partial(self._done, key))
        return await asyncio.shield(task)

    def cancel_all(self) -> None:
        for task in self._calls.values():
            task.cancel()

    def _done(self, key: K, task: asyncio.Task[T]) -> None:
        self._calls.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here: every caller may have given up meanwhile
