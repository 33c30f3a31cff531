"""ClipRepository: every clip state and event read or write goes through here.

State is best effort (SPEC P2): a database that is down, slow or broken never raises into
the pipeline. Writes that fail or take longer than `write_timeout_s` are dropped, logged at
ERROR and counted; reads answer "unknown" (None). The store reconnects by itself, and the
schema is applied on the first successful connection if start-up could not do it.
The API's reads (filtered pages, one clip, statistics) follow the same rule; the states they
list are parsed once per stored version (`updated_at`) and shared: callers must not mutate them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from weakref import WeakValueDictionary

from cachetools import LRUCache
from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy.exc import DBAPIError

from homesec.models.config import StateStoreConfig
from homesec.models.enums import ClipStatus, EventType, SettingKey
from homesec.models.events import ClipEvent, utc_now
from homesec.models.queries import CameraActivity, ClipFilter, ClipStats, PageKey
from homesec.models.state import ClipStateData
from homesec.repository.unsaved import UnsavedStates
from homesec.state import queries
from homesec.state.queries import ClipRow, StoredSetting
from homesec.state.store import Query, StateStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

_START_TIMEOUT_S = 30.0  # migrations at start-up may take longer than one write
_PARSED_STATES_KEPT = 5000  # a few hundred pages of the clip list


@dataclass(frozen=True)
class ClipListing:
    """A clip's state with the time HomeSec first recorded it (the listing order)."""

    state: ClipStateData
    received_at: datetime


@dataclass(frozen=True)
class ClipPage:
    """One page of clips, newest first; `next_key` is None on the last page."""

    items: list[ClipListing]
    next_key: PageKey | None


@dataclass(frozen=True)
class ReviewRefused:
    """A clip cannot be marked reviewed now, and why."""

    reason: str


class ClipRepository:
    """Clip state (`clip_states`) and lifecycle events (`clip_events`), never raising."""

    def __init__(self, store: StateStore, *, write_timeout_s: float) -> None:
        self._store = store
        self._timeout_s = write_timeout_s
        # One lock per clip, forgotten as soon as nobody holds or awaits it.
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()
        self._dropped_writes = 0
        self._parsed = _ParsedStates(_PARSED_STATES_KEPT)
        self._unsaved = UnsavedStates(self.save)

    @classmethod
    def from_config(cls, config: StateStoreConfig) -> ClipRepository:
        return cls(StateStore.from_config(config), write_timeout_s=config.write_timeout_s)

    @property
    def backend_name(self) -> str:
        return self._store.backend_name

    @property
    def dropped_writes(self) -> int:
        return self._dropped_writes

    async def start(self) -> None:
        """Connect and migrate; when the database is down, log it and carry on."""
        logger.info("State store: %s at %s", self.backend_name, self._store.location)
        try:
            async with asyncio.timeout(max(self._timeout_s, _START_TIMEOUT_S)):
                await self._store.ensure_schema()
        except Exception as exc:
            logger.error(
                "State store %s at %s unavailable at start-up (%s); clips are still processed "
                "and the schema is applied on the first successful connection",
                self.backend_name,
                self._store.location,
                _describe(exc),
            )

    @property
    def unsaved_states(self) -> UnsavedStates:
        """Clips whose latest state is not in the database yet (written again when it is)."""
        return self._unsaved

    async def aclose(self) -> None:
        await self._unsaved.aclose()
        try:
            await self._store.aclose()
        except Exception as exc:
            logger.warning("State store did not close cleanly: %s", _describe(exc))

    async def ping(self) -> bool:
        try:
            await self._bounded(self._store.ping())
        except Exception as exc:
            logger.debug("State store ping failed: %s", _describe(exc))
            return False
        self._unsaved.replay_soon()
        return True

    async def save(self, state: ClipStateData, *events: ClipEvent) -> bool:
        """Upsert the clip's state and append `events` atomically (after any of the clip's
        events dropped earlier); False when dropped (written again once the database is back)."""
        try:
            lock = self._locks.setdefault(state.clip_id, asyncio.Lock())
            async with asyncio.timeout(self._timeout_s), lock:
                # Serialized under the lock, so of two saves of one (shared, mutable) state
                # the later write always carries the newer snapshot.
                document = state.model_dump(mode="json")
                batch = [*self._unsaved.events_of(state.clip_id), *events]
                save = partial(
                    queries.save_state, clip_id=state.clip_id, document=document, events=batch
                )
                await self._store.run_write(save)
        except Exception as exc:
            self._drop_write(state.clip_id, exc)
            self._unsaved.remember(state, events)
            return False
        self._unsaved.forget(state.clip_id)
        self._unsaved.replay_soon()
        return True

    async def mark_reviewed(self, clip_id: str) -> ClipStateData | ReviewRefused | None:
        """Record that a person reviewed the done clip; None when it is unknown or the
        database cannot be read; refused for a clip not done (its journal, now or in a later
        round, would write over the mark) or when the write is dropped."""
        state = await self.get(clip_id)
        if state is None:
            return None
        if state.status != ClipStatus.DONE:
            # In error, a background round takes it up again from its own copy of the
            # state, which would write over the mark.
            return ReviewRefused(f"{clip_id} is not done yet (processed or retried)")
        if state.reviewed_at is None:
            state = state.model_copy(update={"reviewed_at": utc_now()})
            event = ClipEvent(
                clip_id=clip_id,
                event_type=EventType.CLIP_REVIEWED,
                camera_name=state.camera_name,
            )
            if not await self.save(state, event):
                return ReviewRefused("the state database did not take the write")
        return state

    async def delete_clip(self, state: ClipStateData) -> bool:
        """Remove the clip's state (its events stay, ending with `clip_deleted`); False when
        the database did not take it."""
        self._unsaved.forget(state.clip_id)  # a dropped write replayed later would bring it back
        event = ClipEvent(
            clip_id=state.clip_id, event_type=EventType.CLIP_DELETED, camera_name=state.camera_name
        )
        try:
            lock = self._locks.setdefault(state.clip_id, asyncio.Lock())
            async with asyncio.timeout(self._timeout_s), lock:
                await self._store.run_write(
                    partial(queries.delete_clip, clip_id=state.clip_id, event=event)
                )
        except Exception as exc:
            self._drop_write(state.clip_id, exc)
            return False
        self._parsed.forget(state.clip_id)
        return True

    async def save_setting(self, key: SettingKey, document: dict[str, Any]) -> bool:
        """Store one of HomeSec's own settings; False when the write was dropped."""
        try:
            await self._bounded(
                self._store.run_write(partial(queries.save_setting, key=key, document=document))
            )
        except Exception as exc:
            logger.error("Setting %s not saved (%s): %s", key, self.backend_name, _describe(exc))
            return False
        return True

    async def load_setting(self, key: SettingKey) -> StoredSetting | None:
        """The stored setting; None when the database cannot say."""
        return await self._read("load_setting", partial(queries.fetch_setting, key=key))

    async def review_counts(self) -> dict[str, int] | None:
        """Per camera, the clips waiting for a person's review; None when unreachable."""
        return await self._read("review_counts", queries.review_counts)

    async def append_event(self, event: ClipEvent) -> bool:
        try:
            await self._bounded(
                self._store.run_write(partial(queries.append_events, events=[event]))
            )
        except Exception as exc:
            self._drop_write(event.clip_id, exc)
            return False
        return True

    async def get(self, clip_id: str) -> ClipStateData | None:
        """The clip's state, upgraded to the current schema; None if missing or unknown.

        A state whose write was dropped is newer than the database's: that one is returned
        (the same object, so the clip keeps one state while the database is down).
        """
        if (unsaved := self._unsaved.state_of(clip_id)) is not None:
            return unsaved
        document = await self._read("get", partial(queries.fetch_state, clip_id=clip_id), clip_id)
        return None if document is None else _to_state(clip_id, document)

    async def has_clip(self, clip_id: str) -> bool | None:
        """Whether a clip by this id is stored; None when the database cannot say."""
        if self._unsaved.state_of(clip_id) is not None:
            return True
        return await self._read("has_clip", partial(queries.has_clip, clip_id=clip_id), clip_id)

    async def get_many(self, clip_ids: Sequence[str]) -> dict[str, ClipStateData] | None:
        """States by clip_id (missing clips left out); None when the database is unreachable."""
        if not clip_ids:
            return {}
        documents = await self._read("get_many", partial(queries.fetch_states, clip_ids=clip_ids))
        if documents is None:
            return None
        states = {clip_id: _to_state(clip_id, doc) for clip_id, doc in documents.items()}
        for clip_id in clip_ids:
            if (unsaved := self._unsaved.state_of(clip_id)) is not None:
                states[clip_id] = unsaved
        return {clip_id: state for clip_id, state in states.items() if state is not None}

    async def list_unfinished(self, limit: int = 1000) -> list[ClipStateData] | None:
        """Clips whose status is not `done`, newest first; None when unreachable."""
        rows = await self._read("list_unfinished", partial(queries.fetch_unfinished, limit=limit))
        if rows is None:
            return None
        states = (_to_state(clip_id, document) for clip_id, document in rows)
        return [state for state in states if state is not None]

    async def list_events(self, clip_id: str) -> list[ClipEvent]:
        """The clip's events, oldest first; [] when the database is unreachable."""
        query = partial(queries.fetch_events, clip_id=clip_id)
        documents = await self._read("list_events", query, clip_id) or []
        return [ClipEvent.model_validate(document) for document in documents]

    async def list_clips(
        self, clip_filter: ClipFilter, *, limit: int, after: PageKey | None = None
    ) -> ClipPage | None:
        """Clips matching the filter, newest first, after `after`; None when unreachable."""
        query = partial(queries.list_clips, clip_filter=clip_filter, after=after, limit=limit + 1)
        rows = await self._read("list_clips", query)
        if rows is None:
            return None
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        next_key = PageKey(last.created_at, last.clip_id) if last else None
        return ClipPage(items=self._parsed.listings(page), next_key=next_key)

    async def get_listing(self, clip_id: str) -> ClipListing | None:
        """One clip with its received time; None when missing, unreadable or unreachable."""
        row = await self._read("get_listing", partial(queries.fetch_clip, clip_id=clip_id), clip_id)
        listings = self._parsed.listings([] if row is None else [row])
        return listings[0] if listings else None

    async def stats(self, since: datetime, until: datetime) -> ClipStats | None:
        """Counts, failures per stage and VLM spend of clips received in the window."""
        return await self._read("stats", partial(queries.clip_stats, since=since, until=until))

    async def camera_activity(self) -> list[CameraActivity] | None:
        """Clip count and latest clip of every camera with stored clips; None when unreachable."""
        return await self._read("camera_activity", queries.camera_activity)

    async def _read(self, operation: str, query: Query[T], clip_id: str | None = None) -> T | None:
        """The query's answer; None (logged) when the database fails or is too slow."""
        try:
            return await self._bounded(self._store.run_read(query))
        except Exception as exc:
            extra = {} if clip_id is None else {"clip_id": clip_id}
            logger.error("State read %s failed: %s", operation, _describe(exc), extra=extra)
            return None

    async def _bounded(self, operation: Awaitable[T]) -> T:
        # The driver stack (SQLAlchemy, asyncpg, aiosqlite, Alembic, sockets) shares no base
        # exception, so callers catch Exception: no state problem may ever cost a clip.
        async with asyncio.timeout(self._timeout_s):
            return await operation

    def _drop_write(self, clip_id: str, exc: BaseException) -> None:
        self._dropped_writes += 1
        logger.error(
            "State write for %s dropped (%s): %s",
            clip_id,
            self.backend_name,
            _describe(exc),
            extra={"event_type": EventType.STATE_WRITE_DROPPED.value, "clip_id": clip_id},
        )


class _ParsedStates:
    """Listed states by clip_id and stored version: a page re-read parses only what changed.

    Every save bumps `updated_at`, so a hit is exactly what the database holds. Bounded LRU.
    """

    def __init__(self, size: int) -> None:
        self._entries: LRUCache[str, tuple[datetime | None, ClipStateData]] = LRUCache(size)

    def forget(self, clip_id: str) -> None:
        self._entries.pop(clip_id, None)

    def listings(self, rows: Sequence[ClipRow]) -> list[ClipListing]:
        listings = []
        for row in rows:
            state = self._state(row)
            if state is not None:
                listings.append(ClipListing(state=state, received_at=row.created_at))
        return listings

    def _state(self, row: ClipRow) -> ClipStateData | None:
        cached = self._entries.get(row.clip_id)
        if cached is not None and row.updated_at is not None and cached[0] == row.updated_at:
            return cached[1]
        try:
            document = from_json(row.document)
        except ValueError as exc:
            logger.error("Stored state of %s is not JSON, ignored: %s", row.clip_id, exc)
            return None
        state = _to_state(row.clip_id, document)
        if state is not None:
            self._entries[row.clip_id] = (row.updated_at, state)
        return state


def _to_state(clip_id: str, document: dict[str, Any]) -> ClipStateData | None:
    try:
        return ClipStateData.from_stored(clip_id, document)
    except (ValidationError, KeyError, ValueError, TypeError) as exc:
        # One unreadable row must not hide the others (recovery lists them all).
        logger.error("Stored state of %s is unreadable, ignored: %s", clip_id, exc)
        return None


def _describe(exc: BaseException) -> str:
    """A one-line reason: the driver's own error, without SQL text or parameters."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return f"{type(cause).__name__}: {cause}"
