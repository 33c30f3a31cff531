"""The Postgres log sink: log records with their structured extras, written in batches.

`PostgresLogHandler.emit` only turns a record into a row and puts it on a bounded queue, so
logging never blocks or raises into the caller (the pipeline). A background thread, with its
own event loop and connection pool, writes the queue to `log_records` in batches and keeps
the table within its retention (age and row count). A full queue or a batch that cannot be
written drops records: they are counted (`dropped`, `homesec_log_records_dropped_total`),
and a warning goes to the other handlers at most once a minute.

Rows are redacted like every log line (`telemetry.redact`). The sink is only for Postgres:
`postgres_log_handler` answers None when the state store runs on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from homesec import metrics
from homesec.backoff import exponential_wait, wait_after
from homesec.models.config import StateStoreConfig
from homesec.state.log_records import insert_records, prune_records
from homesec.state.store import StateStore, database_url
from homesec.state.tables import POSTGRES
from homesec.telemetry import redact, redact_json, structured_extras

logger = logging.getLogger(__name__)

Row = dict[str, Any]

_COLUMN_EXTRAS = ("event_type", "camera_name", "clip_id")
_DROP_WARNING_INTERVAL_S = 60.0
# After a failed write: 1 s, doubling up to 30 s.
_WRITE_RETRY_WAITS = exponential_wait(1.0, 30.0)
_TRACEBACKS = logging.Formatter()


@dataclass(frozen=True)
class LogSinkSettings:
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval_s: float = 0.5
    write_timeout_s: float = 5.0
    max_age: timedelta = timedelta(days=14)
    max_rows: int = 1_000_000
    prune_interval_s: float = 600.0
    close_timeout_s: float = 5.0


def postgres_log_handler(
    config: StateStoreConfig, settings: LogSinkSettings | None = None, level: int = logging.INFO
) -> PostgresLogHandler | None:
    """The sink for the state store's Postgres DSN; None when no DSN is set (SQLite)."""
    url = database_url(config)
    if url.get_backend_name() != POSTGRES:
        return None
    return PostgresLogHandler(StateStore(url), settings or LogSinkSettings(), level)


class PostgresLogHandler(logging.Handler):
    """Queues records in `emit`; a background thread writes them in batches."""

    def __init__(
        self, store: StateStore, settings: LogSinkSettings, level: int = logging.INFO
    ) -> None:
        super().__init__(level)
        self._store = store
        self._settings = settings
        self._queue: queue.Queue[Row] = queue.Queue(maxsize=settings.queue_size)
        self._stop = threading.Event()
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._failures = 0
        self._next_prune = 0.0
        self._warned_dropped = 0
        self._next_warning = 0.0
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._write_forever()), name="homesec-log-sink", daemon=True
        )
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Records lost so far (queue full, or their batch could not be written)."""
        return self._dropped

    def emit(self, record: logging.LogRecord) -> None:
        # The writer's own records (driver, migrations, drop warnings) would feed back.
        if threading.current_thread() is self._thread or self._stop.is_set():
            return
        try:
            self._queue.put_nowait(_row(record))
        except Exception:
            # queue.Full, or a record that cannot be rendered: never the caller's problem.
            self._drop(1)

    def close(self) -> None:
        """Write what is queued (bounded by `close_timeout_s`), then stop the writer."""
        self._stop.set()
        self._thread.join(self._settings.close_timeout_s)
        super().close()

    def _drop(self, count: int) -> None:
        with self._dropped_lock:
            self._dropped += count
        metrics.log_records_dropped(count)

    async def _write_forever(self) -> None:
        try:
            while True:
                stopping = self._stop.is_set()
                batch = self._take_batch()
                if batch:
                    await self._write(batch, back_off=not stopping)
                elif stopping:
                    return
                else:
                    await asyncio.sleep(self._settings.flush_interval_s)
                await self._prune_when_due()
                self._warn_about_drops()
        finally:
            await self._store.aclose()

    def _take_batch(self) -> list[Row]:
        batch: list[Row] = []
        while len(batch) < self._settings.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    async def _write(self, batch: list[Row], back_off: bool) -> None:
        try:
            async with asyncio.timeout(self._settings.write_timeout_s):
                await self._store.run_write(partial(insert_records, rows=batch))
        except Exception as exc:
            self._failures += 1
            self._drop(len(batch))
            logger.debug("Log sink could not write %d records: %s", len(batch), exc)
            if back_off:
                # Ends early on close(), so shutdown is not held up by an outage.
                wait_s = wait_after(_WRITE_RETRY_WAITS, self._failures)
                await asyncio.to_thread(self._stop.wait, wait_s)
            return
        self._failures = 0

    async def _prune_when_due(self) -> None:
        now = time.monotonic()
        if self._failures or now < self._next_prune:
            return
        self._next_prune = now + self._settings.prune_interval_s
        older_than = datetime.now(UTC) - self._settings.max_age
        prune = partial(prune_records, older_than=older_than, keep_newest=self._settings.max_rows)
        try:
            async with asyncio.timeout(self._settings.write_timeout_s):
                await self._store.run_write(prune)
        except Exception as exc:
            logger.warning("Log sink retention failed: %s", exc)

    def _warn_about_drops(self) -> None:
        dropped, now = self._dropped, time.monotonic()
        if dropped > self._warned_dropped and now >= self._next_warning:
            # Reaches the other handlers only: emit() ignores this thread's records.
            logger.warning("Postgres log sink dropped %d records so far", dropped)
            self._warned_dropped, self._next_warning = dropped, now + _DROP_WARNING_INTERVAL_S


def _row(record: logging.LogRecord) -> Row:
    extras = structured_extras(record)
    columns = {key: _text(extras.pop(key, None)) for key in _COLUMN_EXTRAS}
    if record.exc_info:
        extras["exc_info"] = _TRACEBACKS.formatException(record.exc_info)
    return {
        "ts": datetime.fromtimestamp(record.created, UTC),
        "level": record.levelname,
        "logger": record.name,
        "message": redact(record.getMessage()),
        **columns,
        # Through JSON text once: any value becomes JSON-safe, and secrets are redacted.
        "extras": json.loads(redact_json(extras)),
    }


def _text(value: object) -> str | None:
    return None if value is None else redact(str(value))
