"""The MQTT notifier's outbox on disk: queued alerts survive a crash while the broker is down.

`send()` returns once the message is written here; the publish task removes it after the
broker's ack. A restart (even after SIGKILL) publishes again what is still here, so an alert
queued during a broker outage is delivered late rather than never; an alert whose ack came in
just before the crash may go out twice (SPEC: duplicates are acceptable during outages).

SQLite in WAL mode with `synchronous=NORMAL`: a committed row survives the process dying
(the power failing may cost the last rows). Every call blocks: the notifier runs them on its
one journal thread, which also keeps them in order.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    clip_id TEXT,
    camera_name TEXT
)
"""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A message waiting for the broker's ack, as stored."""

    id: int
    topic: str
    payload: bytes
    retain: bool
    clip_id: str | None
    camera_name: str | None


class OutboxJournal:
    """Messages not yet acknowledged by the broker, in the order they were queued."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One journal thread uses the connection, but not the thread that opened it.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def pending(self) -> list[JournalEntry]:
        rows = self._db.execute(
            "SELECT id, topic, payload, retain, clip_id, camera_name FROM pending ORDER BY id"
        )
        return [
            JournalEntry(row[0], row[1], bytes(row[2]), bool(row[3]), row[4], row[5])
            for row in rows
        ]

    def add(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool,
        clip_id: str | None,
        camera_name: str | None,
    ) -> int:
        """Store a message; its id says where it stands in the queue."""
        cursor = self._db.execute(
            "INSERT INTO pending (topic, payload, retain, clip_id, camera_name)"
            " VALUES (?, ?, ?, ?, ?)",
            (topic, payload, int(retain), clip_id, camera_name),
        )
        if cursor.lastrowid is None:
            raise RuntimeError("SQLite gave no row id for an insert")
        return cursor.lastrowid

    def remove(self, entry_id: int) -> None:
        self._db.execute("DELETE FROM pending WHERE id = ?", (entry_id,))

    def close(self) -> None:
        self._db.close()
