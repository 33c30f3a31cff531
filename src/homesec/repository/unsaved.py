"""Clip states whose last write was dropped, written again once the database answers.

Without this, a clip that finished while the database was down kept a stale row (or none)
until the next restart's recovery: the API showed it unfinished, and retention, which only
prunes clips the database calls `done`, kept its local copy forever. The latest state object
of each such clip is kept (bounded) and saved again after the next successful write or ping.
Dropped events are not replayed: `clip_events` is a history, and it says what it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from homesec.models.state import ClipStateData

logger = logging.getLogger(__name__)

MAX_UNSAVED = 10_000
"""Clips remembered at most; beyond that the oldest is left to start-up recovery."""


class UnsavedStates:
    """The latest unsaved state per clip, and one replay pass at a time."""

    def __init__(self, save: Callable[[ClipStateData], Awaitable[bool]]) -> None:
        self._save = save
        self._states: OrderedDict[str, ClipStateData] = OrderedDict()
        self._replay: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._states)

    def remember(self, state: ClipStateData) -> None:
        self._states[state.clip_id] = state
        self._states.move_to_end(state.clip_id)
        if len(self._states) > MAX_UNSAVED:
            forgotten, _ = self._states.popitem(last=False)
            logger.warning("Too many unsaved clip states: %s waits for recovery", forgotten)

    def forget(self, clip_id: str) -> None:
        self._states.pop(clip_id, None)

    def replay_soon(self) -> None:
        """Start a replay pass unless one runs or nothing waits (the database answered)."""
        if self._states and (self._replay is None or self._replay.done()):
            self._replay = asyncio.create_task(self._replay_all(), name="state-replay")

    async def wait(self) -> None:
        """Let a running replay pass finish."""
        if self._replay is not None:
            await asyncio.gather(self._replay, return_exceptions=True)

    async def close(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay

    async def _replay_all(self) -> None:
        for clip_id in list(self._states):
            state = self._states.get(clip_id)
            # A failed save remembers the state again: stop, the next success resumes.
            if state is not None and not await self._save(state):
                return
        if self._states:
            logger.info("Replayed unsaved clip states; %d still waiting", len(self._states))
