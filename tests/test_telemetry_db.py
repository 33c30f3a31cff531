"""The Postgres log sink: batched rows with their extras, redaction, drops, retention."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from homesec.models.config import StateStoreConfig
from homesec.telemetry import register_secret
from homesec.telemetry_db import LogSinkSettings, PostgresLogHandler, postgres_log_handler

DSN_ENV = "HOMESEC_TEST_LOG_DSN"
FAST = LogSinkSettings(flush_interval_s=0.05, close_timeout_s=10.0)


@pytest.fixture
def sink_logger() -> Iterator[logging.Logger]:
    """A logger of its own, so the sink sees only what the test logs."""
    log = logging.getLogger(f"homesec.test_sink.{time.monotonic_ns()}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()


def _handler(
    monkeypatch: pytest.MonkeyPatch, dsn: str, tmp_path: Path, settings: LogSinkSettings = FAST
) -> PostgresLogHandler:
    monkeypatch.setenv(DSN_ENV, dsn)
    handler = postgres_log_handler(
        StateStoreConfig(dsn_env=DSN_ENV, sqlite_path=tmp_path / "x.db"), settings
    )
    assert handler is not None
    return handler


async def _rows(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM log_records ORDER BY id")
    finally:
        await conn.close()
    return [{**dict(row), "extras": json.loads(row["extras"])} for row in rows]


async def test_records_are_written_with_their_structured_extras_and_redacted(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink_logger: logging.Logger
) -> None:
    # Given the sink on a fresh database and a registered secret
    register_secret("hunter2-token")
    handler = _handler(monkeypatch, postgres_dsn, tmp_path)
    sink_logger.addHandler(handler)

    # When records with extras, a secret and a traceback are logged, and the sink is closed
    sink_logger.info(
        "Clip %s uploaded with token hunter2-token",
        "front_door_1700000000.mp4",
        extra={
            "event_type": "stage_completed",
            "camera_name": "front_door",
            "clip_id": "front_door_1700000000.mp4",
            "attempt": 2,
            "url": "rtsp://admin:pw@cam.local/stream",
        },
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sink_logger.exception("Stage crashed")
    handler.close()

    # Then both rows are there: columns, extras as JSON, no secret anywhere, the traceback kept
    first, second = await _rows(postgres_dsn)
    assert first["level"] == "INFO" and first["logger"] == sink_logger.name
    assert first["message"] == "Clip front_door_1700000000.mp4 uploaded with token ***"
    assert (first["event_type"], first["camera_name"], first["clip_id"]) == (
        "stage_completed",
        "front_door",
        "front_door_1700000000.mp4",
    )
    assert first["extras"] == {"attempt": 2, "url": "rtsp://***@cam.local/stream"}
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["extras"]["exc_info"]
    assert handler.dropped == 0


async def test_a_database_that_is_down_never_blocks_logging_and_drops_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink_logger: logging.Logger
) -> None:
    # Given the sink pointing at a Postgres that is not there, with a small queue
    settings = LogSinkSettings(queue_size=100, flush_interval_s=0.05, close_timeout_s=5.0)
    handler = _handler(monkeypatch, "postgresql://homesec@127.0.0.1:9/none", tmp_path, settings)
    sink_logger.addHandler(handler)

    # When far more records are logged than the queue holds
    started = time.perf_counter()
    for n in range(5000):
        sink_logger.info("record %d", n, extra={"clip_id": f"c_{n}"})
    elapsed = time.perf_counter() - started
    closing = time.perf_counter()
    handler.close()

    # Then logging stayed fast, nothing raised, every lost record is counted, close is bounded
    assert elapsed < 1.0
    assert handler.dropped == 5000
    assert time.perf_counter() - closing < 5.5


async def test_retention_keeps_only_the_newest_records(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink_logger: logging.Logger
) -> None:
    # Given a sink that keeps 5 rows, prunes after every batch and drops rows older than a day
    settings = LogSinkSettings(
        flush_interval_s=0.05, max_rows=5, max_age=timedelta(days=1), prune_interval_s=0.0
    )
    handler = _handler(monkeypatch, postgres_dsn, tmp_path, settings)
    sink_logger.addHandler(handler)

    # When 20 records are logged, one of them dated two days ago
    for n in range(20):
        sink_logger.info("record %d", n)
    old = sink_logger.makeRecord(sink_logger.name, logging.INFO, __file__, 1, "ancient", (), None)
    old.created -= 2 * 86400
    handler.handle(old)
    sink_logger.info("last")
    handler.close()

    # Then at most the 5 newest rows remain, and the old one is gone
    messages = [row["message"] for row in await _rows(postgres_dsn)]
    assert len(messages) <= 5 and messages[-1] == "last"
    assert "ancient" not in messages


def test_no_sink_without_a_postgres_dsn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a state store on the embedded SQLite file (no DSN set)
    monkeypatch.delenv(DSN_ENV, raising=False)

    # When the log sink is asked for
    handler = postgres_log_handler(StateStoreConfig(dsn_env=DSN_ENV, sqlite_path=tmp_path / "s.db"))

    # Then there is none
    assert handler is None
