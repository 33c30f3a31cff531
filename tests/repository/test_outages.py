"""When the database is down, slow or comes back, ClipRepository degrades and recovers alone."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import asyncpg
import pytest

from homesec.models.enums import EventType
from homesec.models.events import ClipEvent
from homesec.repository.clip_repository import ClipRepository
from tests.repository.builders import (
    DSN_ENV,
    analyzed_state,
    event,
    new_state,
    state_store_config,
)
from tests.services.postgres import ThrowawayPostgres, free_port


async def test_unreachable_database_drops_writes_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a DSN (with a password) pointing at a port where no database listens
    monkeypatch.setenv(DSN_ENV, f"postgres://homesec:s3cret-pw@127.0.0.1:{free_port()}/homesec")
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    state = new_state()

    # When the repository starts and the pipeline writes and reads
    with caplog.at_level(logging.INFO, logger="homesec"):
        await repository.start()
        saved = await repository.save(state)
        appended = await repository.append_event(_received(state.clip_id))
        results = (
            await repository.get(state.clip_id),
            await repository.get_many([state.clip_id]),
            await repository.list_unfinished(),
            await repository.list_events(state.clip_id),
            await repository.ping(),
        )
    await repository.aclose()

    # Then nothing raised: writes are dropped and counted, reads say "unknown", except the
    # clip's own latest state, which this process still holds (its write waits for a replay)
    assert (saved, appended) == (False, False)
    assert repository.dropped_writes == 2
    assert results == (state, None, None, [], False)
    dropped = [r for r in caplog.records if getattr(r, "event_type", None) == "state_write_dropped"]
    assert [(r.levelno, getattr(r, "clip_id", None)) for r in dropped] == [
        (logging.ERROR, state.clip_id),
        (logging.ERROR, state.clip_id),
    ]
    assert "s3cret-pw" not in caplog.text


async def test_hung_database_costs_at_most_the_write_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silent_server: int
) -> None:
    # Given a database that accepts connections but never answers, and a short write timeout
    monkeypatch.setenv(DSN_ENV, f"postgresql://postgres@127.0.0.1:{silent_server}/homesec")
    repository = ClipRepository.from_config(state_store_config(tmp_path, write_timeout_s=0.3))

    # When the pipeline saves a clip
    started = time.monotonic()
    saved = await repository.save(new_state())
    elapsed = time.monotonic() - started
    await repository.aclose()

    # Then the write is dropped after the timeout, not after the driver's own
    assert saved is False
    assert repository.dropped_writes == 1
    assert elapsed < 1.5


async def test_writes_resume_when_postgres_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_postgres: ThrowawayPostgres
) -> None:
    # Given a running repository on a Postgres server that then goes down
    monkeypatch.setenv(DSN_ENV, throwaway_postgres.dsn)
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()
    before = new_state("driveway_1700000001.mp4")
    assert await repository.save(before)
    throwaway_postgres.stop()
    during = new_state("driveway_1700000002.mp4")
    assert await repository.save(during) is False

    # When the server is back and the same repository writes again
    throwaway_postgres.start()
    after = analyzed_state("driveway_1700000003.mp4")
    saved = await repository.save(after)

    # Then writes resume with no restart, and the state dropped during the outage is written
    # again (once) as soon as the database answered
    try:
        assert saved is True
        await repository.unsaved_states.wait()
        assert repository.dropped_writes == 1
        assert len(repository.unsaved_states) == 0
        stored = await repository.get_many([before.clip_id, during.clip_id, after.clip_id])
        assert stored == {before.clip_id: before, during.clip_id: during, after.clip_id: after}
    finally:
        await repository.aclose()


async def test_a_clip_finished_during_an_outage_is_stored_done_once_a_ping_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_postgres: ThrowawayPostgres
) -> None:
    # Given a clip whose every write, the last one included, came while Postgres was down
    monkeypatch.setenv(DSN_ENV, throwaway_postgres.dsn)
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()
    throwaway_postgres.stop()
    state = new_state("driveway_1700000004.mp4")
    assert await repository.save(state) is False
    finished = analyzed_state("driveway_1700000004.mp4")
    assert await repository.save(finished) is False

    # When the database is back and the health check pings it (no other clip arrives)
    throwaway_postgres.start()
    pinged = await repository.ping()
    await repository.unsaved_states.wait()

    # Then the clip's latest state is stored, and nothing waits any more
    try:
        assert pinged is True
        assert await repository.get(finished.clip_id) == finished
        assert len(repository.unsaved_states) == 0
    finally:
        await repository.aclose()


async def test_events_dropped_during_an_outage_are_written_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_postgres: ThrowawayPostgres
) -> None:
    # Given a clip whose first events were stored, and whose next ones came during an outage
    monkeypatch.setenv(DSN_ENV, throwaway_postgres.dsn)
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()
    state = new_state("driveway_1700000005.mp4")
    clip_id = state.clip_id
    assert await repository.save(state, event(clip_id, EventType.CLIP_RECEIVED))
    throwaway_postgres.stop()
    during = [
        event(clip_id, EventType.STAGE_STARTED, "upload"),
        event(clip_id, EventType.STAGE_COMPLETED, "upload"),
    ]
    assert await repository.save(state, *during) is False

    # When the database is back and the clip's next change is written
    throwaway_postgres.start()
    saved = await repository.save(state, event(clip_id, EventType.CLIP_DONE))

    # Then the clip's history has no hole: every event, in the order it happened
    try:
        assert saved is True
        stored = await repository.list_events(clip_id)
        assert [(e.event_type, e.message) for e in stored] == [
            (EventType.CLIP_RECEIVED, None),
            (EventType.STAGE_STARTED, "upload"),
            (EventType.STAGE_COMPLETED, "upload"),
            (EventType.CLIP_DONE, None),
        ]
        assert len(repository.unsaved_states) == 0
    finally:
        await repository.aclose()


async def test_events_of_a_clip_that_changes_no_more_are_replayed_on_a_ping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_postgres: ThrowawayPostgres
) -> None:
    # Given a clip whose last events were dropped during an outage
    monkeypatch.setenv(DSN_ENV, throwaway_postgres.dsn)
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()
    throwaway_postgres.stop()
    state = analyzed_state("driveway_1700000006.mp4")
    assert await repository.save(state, event(state.clip_id, EventType.CLIP_DONE)) is False

    # When the database is back and the health check pings it
    throwaway_postgres.start()
    assert await repository.ping()
    await repository.unsaved_states.wait()

    # Then the dropped event is stored with the state
    try:
        stored = await repository.list_events(state.clip_id)
        assert [e.event_type for e in stored] == [EventType.CLIP_DONE]
    finally:
        await repository.aclose()


async def test_schema_is_applied_once_the_database_comes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_postgres: ThrowawayPostgres
) -> None:
    # Given a repository started while its Postgres server was down
    monkeypatch.setenv(DSN_ENV, throwaway_postgres.dsn)
    throwaway_postgres.stop()
    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()

    # When the server comes up and the pipeline saves a clip
    throwaway_postgres.start()
    state = analyzed_state()
    saved = await repository.save(state, _received(state.clip_id))

    # Then the first successful connection created the tables and the write landed
    try:
        assert saved is True
        assert await repository.get(state.clip_id) == state
        assert [e.clip_id for e in await repository.list_events(state.clip_id)] == [state.clip_id]
    finally:
        await repository.aclose()


async def test_unusable_sqlite_path_drops_writes_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no DSN and a SQLite path whose parent became a regular file after the config
    # was validated (validation refuses it up front)
    monkeypatch.delenv(DSN_ENV, raising=False)
    config = state_store_config(tmp_path)
    (tmp_path / "var").write_text("not a directory")
    repository = ClipRepository.from_config(config)

    # When the repository starts and the pipeline saves a clip
    await repository.start()
    saved = await repository.save(new_state())
    await repository.aclose()

    # Then the write is dropped and counted, and nothing raised
    assert repository.backend_name == "sqlite"
    assert saved is False
    assert repository.dropped_writes == 1


def _received(clip_id: str) -> ClipEvent:
    return event(clip_id, EventType.CLIP_RECEIVED)


@pytest.mark.slow
async def test_write_stuck_on_a_lock_is_dropped_and_the_next_one_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_dsn: str
) -> None:
    # Given a running repository and another session holding clip_states locked
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    repository = ClipRepository.from_config(state_store_config(tmp_path, write_timeout_s=0.5))
    await repository.start()
    assert await repository.save(new_state("side_1700000001.mp4"))
    blocker = await asyncpg.connect(postgres_dsn)
    locked = blocker.transaction()
    await locked.start()
    await blocker.execute("LOCK TABLE clip_states IN ACCESS EXCLUSIVE MODE")

    # When the pipeline saves while the lock is held, and again once it is released
    started = time.monotonic()
    stuck = await repository.save(new_state("side_1700000002.mp4"))
    elapsed = time.monotonic() - started
    await locked.rollback()
    await blocker.close()
    state = analyzed_state("side_1700000003.mp4")
    saved = await repository.save(state)

    # Then the stuck write was dropped at the timeout and the same connection pool recovered
    try:
        assert (stuck, saved) == (False, True)
        assert elapsed < 1.5
        assert repository.dropped_writes == 1
        assert await repository.get(state.clip_id) == state
    finally:
        await repository.aclose()
