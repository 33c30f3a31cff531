"""The Frigate items a source has taken, kept on disk next to their clips.

Each item is taken once: it is recorded as pending when its fetch starts, and a clip name is
claimed and recorded before the fetched file gets it, so after a stop or a crash an item
whose file got its name is a spooled clip, and one whose file did not is fetched again. Items
Frigate never had a clip for are recorded too (not asked again). The next catch-up starts at
the oldest item still pending (else at the newest end time), so none is skipped. Entries
older than the catch-up window whose clip is gone are forgotten, so the file stays small.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from homesec.models.results import FilterResult

logger = logging.getLogger(__name__)


class ItemState(StrEnum):
    PENDING = "pending"
    """Its clip is being fetched: fetched again after a restart."""
    CLAIMED = "claimed"
    """A clip name is claimed; the fetched file may not have it yet."""
    TAKEN = "taken"
    """The clip is in the spool under its name (or was, and was pruned)."""
    UNAVAILABLE = "unavailable"
    """Frigate had no clip for it in time: not asked again."""


class LedgerEntry(BaseModel):
    state: ItemState
    clip_id: str | None = None
    start: datetime
    end: datetime
    events: list[str] = Field(default_factory=list, description="Frigate's event ids")
    detections: FilterResult | None = None
    """Frigate's own detections, when the source uses them instead of HomeSec's detector."""


class _LedgerFile(BaseModel):
    items: dict[str, LedgerEntry] = Field(default_factory=dict)


class Ledger:
    """Thread-safe: the source writes it from worker threads, recovery reads it."""

    def __init__(self, path: Path, keep: timedelta) -> None:
        self._path = path
        self._keep = keep
        self._items: dict[str, LedgerEntry] = {}
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        """Read the file (a missing or unreadable one starts empty) and settle claimed items."""
        folder = self._path.parent
        folder.mkdir(parents=True, exist_ok=True)
        try:
            items = _LedgerFile.model_validate_json(self._path.read_bytes()).items
        except FileNotFoundError:
            items = {}
        except (OSError, ValidationError):
            logger.exception("Unreadable Frigate ledger %s; starting a new one", self._path)
            items = {}
        settled: dict[str, LedgerEntry] = {}
        for item_id, entry in items.items():
            exists = entry.clip_id is not None and (folder / entry.clip_id).exists()
            if entry.state == ItemState.CLAIMED:
                # A crash before the file got its name leaves the item to fetch again.
                state = ItemState.TAKEN if exists else ItemState.PENDING
                entry = entry.model_copy(update={"state": state})
            settled[item_id] = entry
        with self._lock:
            self._items = settled
            self._loaded = True
        self._save()

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    def known(self, item_id: str) -> bool:
        """Taken or given up (a pending item is not: its fetch may have been cut short)."""
        with self._lock:
            entry = self._items.get(item_id)
            return entry is not None and entry.state != ItemState.PENDING

    def catch_up_from(self) -> datetime | None:
        """The end of the oldest pending item, else of the newest item; None when empty."""
        with self._lock:
            pending = [e.end for e in self._items.values() if e.state == ItemState.PENDING]
            if pending:
                return min(pending)
            return max((entry.end for entry in self._items.values()), default=None)

    def by_clip(self, clip_id: str) -> LedgerEntry | None:
        with self._lock:
            return next((e for e in self._items.values() if e.clip_id == clip_id), None)

    def taken(self) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self._items.values() if e.state == ItemState.TAKEN and e.clip_id]

    def record(self, item_id: str, entry: LedgerEntry) -> None:
        with self._lock:
            self._items[item_id] = entry
            self._forget_old(entry.end)
        self._save()

    def _forget_old(self, now: datetime) -> None:
        folder = self._path.parent
        self._items = {
            item_id: entry
            for item_id, entry in self._items.items()
            if now - entry.end < self._keep
            or (entry.clip_id is not None and (folder / entry.clip_id).exists())
        }

    def _save(self) -> None:
        with self._lock:
            payload = _LedgerFile(items=self._items).model_dump_json()
            tmp = self._path.with_name(self._path.name + ".tmp")
            with tmp.open("w", encoding="utf-8") as file:
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())  # a power cut must not leave an empty ledger
            tmp.replace(self._path)
