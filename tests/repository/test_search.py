"""Full-text search over the clips, on SQLite (FTS5) and Postgres (tsvector): summaries,
activities, timelines, known names and cameras; time phrases; with the other filters and
cursor paging."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import create_async_engine

from homesec.models.config import StateStoreConfig
from homesec.models.enums import RiskLevel
from homesec.models.known import RecognisedEntity
from homesec.models.queries import ClipFilter
from homesec.models.results import AnalysisResult, EntityEvent
from homesec.models.search import SearchQuery
from homesec.models.state import ClipStateData
from homesec.repository.clip_repository import ClipRepository
from homesec.state.store import database_url
from homesec.state.tables import clip_states
from tests.repository.builders import new_state


def _clip(
    camera: str,
    hour: int,
    summary: str,
    activity: str = "unknown",
    *,
    day: int = 7,
    known: tuple[str, ...] = (),
    timeline: tuple[tuple[str, str], ...] = (),
) -> ClipStateData:
    """An analysed clip that started at `hour` local time on December `day`, 2026."""
    started = datetime(2026, 12, day, hour, 5).astimezone()  # the machine's local time
    state = new_state(f"{camera}_{int(started.timestamp())}.mp4")
    state.start_ts = started
    state.analysis_result = AnalysisResult(
        risk_level=RiskLevel.MEDIUM,
        activity_type=activity,
        summary=summary,
        entities_timeline=[EntityEvent(time_s=1.0, entity=e, action=a) for e, a in timeline],
        known_entities=[RecognisedEntity(name=name, label="person") for name in known],
    )
    return state


RED_JACKET = _clip("front_door", 14, "A man in a red jacket tries the door handle.", "loitering")
BLUE_JACKET = _clip("front_door", 15, "A courier in a blue jacket rings.", "doorbell")
EVENING_PARCEL = _clip("front_door", 19, "A courier leaves a parcel.", "delivery")
MORNING_PARCEL = _clip("front_door", 9, "Two deliveries at once.", "delivery", day=8)
YARD_DOG = _clip("backyard", 11, "A dog runs across the lawn.", "animal")
DOOR_DOG = _clip("front_door", 12, "A neighbour walks a dog past.", "passerby")
ALICE = _clip(
    "driveway",
    18,
    "A woman parks and walks in.",
    "person_at_door",
    known=("Alice",),
    timeline=(("woman", "unlocks the garage"),),
)
ALL = [RED_JACKET, BLUE_JACKET, EVENING_PARCEL, MORNING_PARCEL, YARD_DOG, DOOR_DOG, ALICE]


@pytest.fixture
async def seeded(repository: ClipRepository) -> ClipRepository:
    for state in ALL:
        assert await repository.save(state)
    return repository


async def _found(repository: ClipRepository, q: str, **filters: object) -> set[str]:
    page = await repository.list_clips(ClipFilter(q=q, **filters), limit=50)
    assert page is not None
    return {item.state.clip_id for item in page.items}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("red jacket", [RED_JACKET]),
        ("jacket", [RED_JACKET, BLUE_JACKET]),
        ("delivery after 6 pm", [EVENING_PARCEL]),
        ("delivery before 10am", [MORNING_PARCEL]),
        ("deliveries", [EVENING_PARCEL, MORNING_PARCEL]),
        ("dog in the backyard", [YARD_DOG]),
        ("dog", [YARD_DOG, DOOR_DOG]),
        ("alice", [ALICE]),
        ("garage", [ALICE]),
        ("between 6 and 8 pm", [EVENING_PARCEL, ALICE]),
        ("driveway", [ALICE]),
        ("person at door", [ALICE]),
        ("giraffe", []),
    ],
)
async def test_a_search_finds_the_clips_that_hold_every_word(
    seeded: ClipRepository, q: str, expected: list[ClipStateData]
) -> None:
    # Given analysed clips of several cameras, hours and activities
    # When the clips are searched
    found = await _found(seeded, q)

    # Then exactly the clips holding every word (and in the hours asked) come back
    assert found == {state.clip_id for state in expected}


async def test_search_combines_with_the_filters_and_pages_with_the_cursor(
    seeded: ClipRepository,
) -> None:
    # Given the same clips
    # When "courier" is searched at the front door, one clip per page
    first = await seeded.list_clips(ClipFilter(q="courier", camera="front_door"), limit=1)
    assert first is not None and first.next_key is not None
    second = await seeded.list_clips(
        ClipFilter(q="courier", camera="front_door"), limit=1, after=first.next_key
    )
    elsewhere = await _found(seeded, "dog", camera="front_door")

    # Then the two couriers come one per page, newest first, and the filter holds
    assert second is not None and second.next_key is None
    pages = [item.state.clip_id for item in first.items + second.items]
    assert pages == [EVENING_PARCEL.clip_id, BLUE_JACKET.clip_id]
    assert elsewhere == {DOOR_DOG.clip_id}


async def test_a_clip_is_found_by_its_analysis_once_it_has_one(
    repository: ClipRepository,
) -> None:
    # Given a clip saved before its analysis (found by its camera only)
    state = _clip("garden", 10, "A fox crosses the garden.", "animal")
    analysis = state.analysis_result
    state.analysis_result = None
    assert await repository.save(state)
    before = await _found(repository, "fox")

    # When its analysis is saved
    state.analysis_result = analysis
    assert await repository.save(state)

    # Then it is found by the words of its summary, not before
    assert before == set()
    assert await _found(repository, "fox") == {state.clip_id}
    assert await _found(repository, "garden") == {state.clip_id}


@pytest.mark.parametrize(
    "q",
    ['red" OR "blue', "jacket*", "NEAR(red jacket)", "-jacket", "red:*|blue", "'; DROP", "\x00"],
)
async def test_query_syntax_in_a_search_is_only_words(seeded: ClipRepository, q: str) -> None:
    # Given the same clips
    # When a search holds the engines' own query syntax
    found = await _found(seeded, q)

    # Then it is read as its words, never as syntax, and never fails
    words = set(SearchQuery.parse(q).words)
    if words == {"red", "jacket"}:
        assert found == {RED_JACKET.clip_id}
    assert found <= {state.clip_id for state in ALL}


def test_time_phrases_become_hours_and_leave_the_words() -> None:
    # Given searches with time phrases
    # When they are read
    # Then the phrases become the hours they cover, and the other words remain
    assert SearchQuery.parse("delivery after 6 pm") == SearchQuery(
        ("delivery",), tuple(range(18, 24))
    )
    assert SearchQuery.parse("before 7am") == SearchQuery((), tuple(range(7)))
    assert SearchQuery.parse("at 13") == SearchQuery((), (13,))
    assert SearchQuery.parse("between 10 pm and 2 am") == SearchQuery((), (0, 1, 22, 23))
    assert SearchQuery.parse("the dog in the yard") == SearchQuery(("dog", "yard"))


async def test_clips_stored_before_search_existed_are_found_after_the_upgrade(
    state_config: StateStoreConfig,
) -> None:
    # Given a database at the schema before search (0004) holding an analysed clip
    state_config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(database_url(state_config))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0004")
            await conn.execute(
                insert(clip_states),
                [{"clip_id": YARD_DOG.clip_id, "data": YARD_DOG.model_dump(mode="json")}],
            )
    finally:
        await engine.dispose()

    # When HomeSec starts on it (migrating to the newest schema) and searches
    repository = ClipRepository.from_config(state_config)
    await repository.start()
    try:
        found = await _found(repository, "dog in the backyard")
    finally:
        await repository.aclose()

    # Then the old clip is found by its summary and camera
    assert found == {YARD_DOG.clip_id}


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", "homesec.state:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
