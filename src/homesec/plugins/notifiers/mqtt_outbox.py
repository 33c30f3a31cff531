"""The MQTT notifier's outbox: messages waiting for the broker, bounded and journaled on disk.

Alerts, detection events and system alerts are written to a journal (SQLite under HomeSec's
work folder) before `put_durable` returns; the publish loop takes each out once the broker has
acknowledged it. A restart (even after SIGKILL) queues again what is still in the journal, so
an alert queued during a broker outage is delivered late rather than never; one whose ack came
in just before the crash may go out twice (SPEC: duplicates are acceptable during outages).

Beyond `max_pending` queued messages the oldest are dropped (counted in `dropped`, logged at
ERROR). Retained entity state (`supersedable`) is a latest value: a newer message on the same
topic replaces it, so a stale snapshot never takes an alert's place.

SQLite in WAL mode with `synchronous=NORMAL`: a committed row survives the process dying
(the power failing may cost the last rows). Journal calls block: they run on the outbox's one
journal thread, which also keeps them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

# Telemetry `event_type` values of the outbox.
EVENT_MESSAGE_DROPPED = "mqtt_message_dropped"
EVENT_RESUMED = "mqtt_resumed_from_journal"
EVENT_JOURNAL_FAILED = "mqtt_journal_failed"

T = TypeVar("T")

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


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    """A message for the broker, with the clip and camera its log lines name."""

    topic: str
    payload: str | bytes
    retain: bool = False
    clip_id: str | None = None
    camera_name: str | None = None
    # A latest value (HA entity state): a newer message on the same topic replaces it.
    supersedable: bool = False
    # Its row in the journal; None when it is kept in memory only.
    journal_id: int | None = None


def log_extra(notifier: str, event_type: str, **fields: Any) -> dict[str, Any]:
    """The telemetry fields of a log line of the MQTT notifier or its outbox."""
    return {"event_type": event_type, "notifier": notifier, **fields}


class _Journal:
    """Messages not yet acknowledged by the broker, in the order they were queued."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One journal thread uses the connection, but not the thread that opened it.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def pending(self) -> list[OutboxMessage]:
        rows = self._db.execute(
            "SELECT id, topic, payload, retain, clip_id, camera_name FROM pending ORDER BY id"
        )
        return [
            OutboxMessage(
                journal_id=entry_id,
                topic=topic,
                payload=bytes(payload),
                retain=bool(retain),
                clip_id=clip_id,
                camera_name=camera_name,
            )
            for entry_id, topic, payload, retain, clip_id, camera_name in rows
        ]

    def add(self, message: OutboxMessage) -> int:
        """Store a message; its id says where it stands in the queue."""
        payload = message.payload
        cursor = self._db.execute(
            "INSERT INTO pending (topic, payload, retain, clip_id, camera_name)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                message.topic,
                payload.encode() if isinstance(payload, str) else payload,
                int(message.retain),
                message.clip_id,
                message.camera_name,
            ),
        )
        if cursor.lastrowid is None:
            raise RuntimeError("SQLite gave no row id for an insert")
        return cursor.lastrowid

    def remove(self, entry_id: int) -> None:
        self._db.execute("DELETE FROM pending WHERE id = ?", (entry_id,))

    def close(self) -> None:
        self._db.close()


class Outbox:
    """The queue the publish loop empties in order, head first.

    `journal_path` None keeps every message in memory only (no work folder configured).
    """

    def __init__(self, *, name: str, max_pending: int, journal_path: Path | None) -> None:
        self._name = name
        self._max_pending = max_pending
        self._journal_path = journal_path
        self._journal: _Journal | None = None
        self._journal_thread = ThreadPoolExecutor(1, thread_name_prefix=f"mqtt-journal:{name}")
        self._queue: deque[OutboxMessage] = deque()
        self._has_mail = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """Messages dropped because the outbox was full."""
        return self._dropped

    async def start(self) -> None:
        """Open the journal and queue what it still holds from before the last stop."""
        path = self._journal_path
        if path is None:
            return
        try:
            self._journal = journal = await self._in_journal(lambda: _Journal(path))
            left_over = await self._in_journal(journal.pending)
        except sqlite3.Error as exc:
            logger.error(
                "MQTT notifier %s: journal %s unusable (%s); alerts queued in memory only",
                self._name,
                path,
                exc,
                extra=log_extra(self._name, EVENT_JOURNAL_FAILED),
            )
            self._journal = None
            return
        if left_over:
            logger.warning(
                "MQTT notifier %s: %d messages from before the last stop go out first",
                self._name,
                len(left_over),
                extra=log_extra(self._name, EVENT_RESUMED, pending=len(left_over)),
            )
        for message in left_over:
            self.put(message)

    async def put_durable(self, message: OutboxMessage) -> None:
        """Queue a message that must survive a crash: journal it first."""
        journal = self._journal
        if journal is not None:
            try:
                entry_id = await self._in_journal(lambda: journal.add(message))
            except sqlite3.Error as exc:
                # Delivery comes first: the message still goes out unless the process dies.
                logger.error(
                    "MQTT notifier %s cannot journal a message (%s): kept in memory only",
                    self._name,
                    exc,
                    extra=log_extra(self._name, EVENT_JOURNAL_FAILED, clip_id=message.clip_id),
                )
            else:
                message = replace(message, journal_id=entry_id)
        self.put(message)

    def put(self, message: OutboxMessage) -> None:
        """Queue a message; one journaled already keeps its `journal_id`."""
        if message.supersedable:
            stale = [m for m in self._queue if m.supersedable and m.topic == message.topic]
            for old in stale:
                self._queue.remove(old)
                self._forget(old)
        if len(self._queue) >= self._max_pending:
            self._drop_oldest()
        self._queue.append(message)
        self._drained.clear()
        self._has_mail.set()

    async def head(self) -> OutboxMessage:
        """The oldest message, once there is one; it stays queued until `delivered`."""
        while not self._queue:
            self._drained.set()
            self._has_mail.clear()
            await self._has_mail.wait()
        return self._queue[0]

    def mark_delivered(self, message: OutboxMessage) -> None:
        """The broker has the message: take it out of the queue and the journal."""
        # It may have been dropped (or superseded) while the publish waited for the ack.
        if self._queue and self._queue[0] is message:
            self._queue.popleft()
            self._forget(message)

    async def wait_drained(self, timeout_s: float) -> None:
        """Wait until the queue is empty, at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout_s)

    async def aclose(self) -> None:
        """Close the journal; what is still queued goes out after the next start."""
        if self._journal is not None:
            await self._in_journal(self._journal.close)
            self._journal = None
        self._journal_thread.shutdown(wait=True)

    async def _in_journal(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._journal_thread, call)

    def _forget(self, message: OutboxMessage) -> None:
        """Take a message out of the journal (in order, on the journal thread; not awaited)."""
        if self._journal is not None and message.journal_id is not None:
            self._journal_thread.submit(self._journal.remove, message.journal_id)

    def _drop_oldest(self) -> None:
        oldest = self._queue.popleft()
        self._forget(oldest)
        self._dropped += 1
        logger.error(
            "MQTT notifier %s: outbox full (%d), dropped the oldest message on %s (%d dropped)",
            self._name,
            self._max_pending,
            oldest.topic,
            self._dropped,
            extra=log_extra(
                self._name,
                EVENT_MESSAGE_DROPPED,
                clip_id=oldest.clip_id,
                camera_name=oldest.camera_name,
                dropped=self._dropped,
            ),
        )
