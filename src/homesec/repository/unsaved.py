"""Clip states and events whose write was dropped, written again once the database answers.

Without this, a clip that finished while the database was down kept a stale row (or none)
until the next restart's recovery: the API showed it unfinished, and retention, which only
prunes clips the database calls settled, kept its local copy forever. The latest state
object of each such clip, and the lifecycle events that were dropped with it (in order,
bounded), are kept and saved again after the next successful write or ping: the clip's
history has no hole where the outage was.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from homesec.models.events import ClipEvent
from homesec.models.state import ClipStateData
from homesec.single_flight import SingleRun

logger = logging.getLogger(__name__)

MAX_UNSAVED = 10_000
"""Clips remembered at most; beyond that the oldest is left to start-up recovery."""
MAX_EVENTS_PER_CLIP = 500
"""Dropped events kept per clip; beyond that the oldest are lost (logged)."""


@dataclass
class _Unsaved:
    state: ClipStateData
    events: list[ClipEvent] = field(default_factory=list)


class UnsavedStates:
    """The latest unsaved state and the dropped events per clip; one replay pass at a time."""

    def __init__(self, save: Callable[[ClipStateData], Awaitable[bool]]) -> None:
        self._save = save
        self._states: OrderedDict[str, _Unsaved] = OrderedDict()
        self._replay = SingleRun()

    def __len__(self) -> int:
        return len(self._states)

    def remember(self, state: ClipStateData, events: Sequence[ClipEvent] = ()) -> None:
        """A write of `state` with `events` was dropped."""
        unsaved = self._states.setdefault(state.clip_id, _Unsaved(state))
        unsaved.state = state
        unsaved.events.extend(events)
        if len(unsaved.events) > MAX_EVENTS_PER_CLIP:
            lost = len(unsaved.events) - MAX_EVENTS_PER_CLIP
            del unsaved.events[:lost]
            logger.warning("%d dropped events of %s are lost", lost, state.clip_id)
        self._states.move_to_end(state.clip_id)
        if len(self._states) > MAX_UNSAVED:
            forgotten, _ = self._states.popitem(last=False)
            logger.warning("Too many unsaved clip states: %s waits for recovery", forgotten)

    def state_of(self, clip_id: str) -> ClipStateData | None:
        """The clip's latest state when it is not written yet (newer than the database's)."""
        unsaved = self._states.get(clip_id)
        return None if unsaved is None else unsaved.state

    def events_of(self, clip_id: str) -> list[ClipEvent]:
        """The clip's dropped events, oldest first: written ahead of its next events."""
        unsaved = self._states.get(clip_id)
        return list(unsaved.events) if unsaved is not None else []

    def forget(self, clip_id: str) -> None:
        """The clip's state and events are written."""
        self._states.pop(clip_id, None)

    def replay_soon(self) -> None:
        """Start a replay pass unless one runs or nothing waits (the database answered)."""
        if self._states:
            self._replay.start(self._replay_all, name="state-replay")

    async def wait(self) -> None:
        await self._replay.wait()

    async def aclose(self) -> None:
        await self._replay.cancel()

    async def _replay_all(self) -> None:
        for clip_id in list(self._states):
            unsaved = self._states.get(clip_id)
            # A failed save remembers the state again: stop, the next success resumes.
            if unsaved is not None and not await self._save(unsaved.state):
                return
        if self._states:
            logger.info("Replayed unsaved clip states; %d still waiting", len(self._states))
