"""ClipRepository reads and writes clip state and events, the same on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

import homesec.state
from homesec.models.config import StateStoreConfig
from homesec.models.enums import ClipStatus, EventType, StageName, StageStatus
from homesec.models.state import SCHEMA_VERSION
from homesec.repository.clip_repository import ClipRepository
from homesec.state.store import database_url
from homesec.state.tables import clip_states
from tests.repository.builders import DSN_ENV, analyzed_state, done_state, event, new_state


async def _insert_raw_row(config: StateStoreConfig, clip_id: str, data: dict[str, Any]) -> None:
    """Write a row the way an older HomeSec did, bypassing the repository."""
    engine = create_async_engine(database_url(config))
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(clip_states).values(clip_id=clip_id, data=data))
    finally:
        await engine.dispose()


async def test_saved_state_reads_back_equal(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given a clip with every result filled in
    state = analyzed_state()

    # When it is saved and read back
    saved = await repository.save(state)
    loaded = await repository.get(state.clip_id)

    # Then the same state comes back, on the backend the config selects
    assert saved is True
    assert loaded == state
    assert loaded is not None and loaded.status == ClipStatus.ANALYZED
    expected_backend = "postgres" if DSN_ENV in os.environ else "sqlite"
    assert repository.backend_name == expected_backend
    assert repository.dropped_writes == 0


async def test_saving_again_replaces_the_state(repository: ClipRepository) -> None:
    # Given a clip saved when it arrived
    clip_id = "garage_1700000300.mp4"
    await repository.save(new_state(clip_id))

    # When it is saved again after the pipeline finished with it
    await repository.save(done_state(clip_id))

    # Then the stored state is the finished one
    loaded = await repository.get(clip_id)
    assert loaded == done_state(clip_id)
    assert loaded is not None and loaded.status == ClipStatus.DONE


async def test_unknown_clip_reads_as_none(repository: ClipRepository) -> None:
    # Given an empty store
    # When a clip that was never saved is read
    loaded = await repository.get("nowhere_1700000000.mp4")

    # Then there is no state
    assert loaded is None


async def test_events_are_appended_in_order_and_never_rewritten(
    repository: ClipRepository,
) -> None:
    # Given a clip whose saves carry events, plus an event appended on its own
    state = new_state()
    received = event(state.clip_id, EventType.CLIP_RECEIVED)
    started = event(state.clip_id, EventType.STAGE_STARTED, "upload")
    await repository.save(state, received, started)
    retried = event(state.clip_id, EventType.STAGE_RETRY, "upload")
    await repository.append_event(retried)

    # When the clip is saved again with one more event
    state.stages[StageName.UPLOAD].status = StageStatus.OK
    completed = event(state.clip_id, EventType.STAGE_COMPLETED, "upload")
    await repository.save(state, completed)

    # Then every event is there, oldest first, exactly as first written
    assert await repository.list_events(state.clip_id) == [received, started, retried, completed]
    assert await repository.list_events("other_1700000000.mp4") == []


async def test_v1_row_is_upgraded_on_read(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given a row written by schema version 1: no clip_id inside, a stored status
    clip_id = "front_door_1699990000.mp4"
    v1 = {
        "schema_version": 1,
        "camera_name": "front_door",
        "status": "analyzed",
        "stages": {
            "upload": {"status": "ok", "attempts": 1},
            "filter": {"status": "ok", "attempts": 1},
            "vlm": {"status": "ok", "attempts": 2, "last_error": None},
            "notify": {"status": "pending", "attempts": 0},
        },
        "local_path": f"/var/homesec/spool/{clip_id}",
        "storage_uri": f"dropbox:/homesec/front_door/{clip_id}",
        "filter_result": {
            "detected_classes": ["person"],
            "confidence": 0.8,
            "model": "yolov8n",
            "sampled_frames": 10,
        },
        "analysis_result": {
            "risk_level": "medium",
            "activity_type": "delivery",
            "summary": "A courier leaves a parcel.",
        },
        "alert_decision": None,
    }
    await _insert_raw_row(state_config, clip_id, v1)

    # When the repository reads it
    loaded = await repository.get(clip_id)
    unfinished = await repository.list_unfinished()

    # Then it is a valid current-schema state with the clip_id filled in
    assert loaded is not None
    assert loaded.schema_version == SCHEMA_VERSION
    assert loaded.clip_id == clip_id
    assert loaded.status == ClipStatus.ANALYZED
    assert loaded.stage(StageName.VLM).attempts == 2
    assert loaded.filter_result is not None and loaded.filter_result.model == "yolov8n"
    assert unfinished == [loaded]


async def test_concurrent_saves_of_one_state_keep_the_newest_snapshot(
    repository: ClipRepository,
) -> None:
    # Given one shared state object that many stage tasks update and save at once
    state = new_state()

    async def record_attempt(attempt: int) -> bool:
        state.stages[StageName.UPLOAD].attempts = attempt
        return await repository.save(state)

    # When twenty saves race
    results = await asyncio.gather(*(record_attempt(n) for n in range(1, 21)))

    # Then all succeed and the stored row is the last snapshot, not an older one
    assert all(results)
    loaded = await repository.get(state.clip_id)
    assert loaded is not None
    assert loaded.stage(StageName.UPLOAD).attempts == 20
    assert loaded == state


async def test_list_unfinished_is_newest_first_and_skips_done(
    repository: ClipRepository,
) -> None:
    # Given clips saved oldest to newest, one of them finished
    await repository.save(new_state("porch_1700000001.mp4"))
    await repository.save(done_state("porch_1700000002.mp4"))
    await repository.save(analyzed_state("porch_1700000003.mp4"))
    await repository.save(new_state("porch_1700000004.mp4"))

    # When the unfinished clips are listed, all of them and then only the newest
    unfinished = await repository.list_unfinished()
    newest = await repository.list_unfinished(limit=1)

    # Then the finished clip is left out and the newest comes first
    assert unfinished is not None and newest is not None
    assert [state.clip_id for state in unfinished] == [
        "porch_1700000004.mp4",
        "porch_1700000003.mp4",
        "porch_1700000001.mp4",
    ]
    assert [state.clip_id for state in newest] == ["porch_1700000004.mp4"]


async def test_get_many_returns_the_stored_clips_only(repository: ClipRepository) -> None:
    # Given two stored clips
    first, second = new_state("yard_1700000010.mp4"), done_state("yard_1700000020.mp4")
    await repository.save(first)
    await repository.save(second)

    # When three clips are asked for, one of them unknown
    found = await repository.get_many([first.clip_id, second.clip_id, "yard_1700000030.mp4"])
    nothing = await repository.get_many([])

    # Then the two stored ones come back by clip_id
    assert found == {first.clip_id: first, second.clip_id: second}
    assert nothing == {}


async def test_restarts_reapply_no_migration_and_keep_data(
    state_config: StateStoreConfig,
) -> None:
    # Given a repository that was started twice and saved a clip
    state = analyzed_state()
    first = ClipRepository.from_config(state_config)
    await first.start()
    await first.start()
    await first.save(state)
    await first.aclose()

    # When the application restarts with a new repository on the same database
    second = ClipRepository.from_config(state_config)
    await second.start()

    # Then the schema was not recreated: the clip is still there and writes go on
    try:
        assert await second.get(state.clip_id) == state
        assert await second.save(new_state("front_door_1700000099.mp4"))
        assert await _alembic_revisions(state_config) == [_newest_migration()]
    finally:
        await second.aclose()


def _newest_migration() -> str:
    versions = Path(homesec.state.__file__).parent / "migrations" / "versions"
    return max(path.name.split("_", 1)[0] for path in versions.glob("[0-9]*_*.py"))


async def _alembic_revisions(config: StateStoreConfig) -> list[str]:
    engine = create_async_engine(database_url(config))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return [row.version_num for row in rows]
    finally:
        await engine.dispose()
