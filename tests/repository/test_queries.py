"""The API's reads: filtered newest-first pages, one clip, statistics, camera activity.

Every test runs on the embedded SQLite file and on Postgres (the `repository` fixture).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from homesec.models.config import StateStoreConfig
from homesec.models.enums import ClipStatus, RiskLevel, StageName
from homesec.models.queries import ClipFilter, PageKey
from homesec.repository.clip_repository import ClipRepository
from tests.api.seeding import T0, clip_state, insert_states, spread, varied_clips
from tests.repository.builders import DSN_ENV, state_store_config


async def _all_pages(
    repository: ClipRepository, clip_filter: ClipFilter, limit: int
) -> list[list[str]]:
    pages: list[list[str]] = []
    after: PageKey | None = None
    while True:
        page = await repository.list_clips(clip_filter, limit=limit, after=after)
        assert page is not None
        pages.append([listing.state.clip_id for listing in page.items])
        if page.next_key is None:
            return pages
        after = page.next_key


async def test_pages_walk_every_clip_newest_first_exactly_once(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given 250 clips received a minute apart, two of them in the same microsecond
    states = [clip_state("front_door", 1_700_000_000 + n) for n in range(250)]
    rows = spread(states)
    rows[101] = (rows[101][0], rows[100][1])
    await insert_states(state_config, rows)

    # When every page of 40 is read by following the keys
    pages = await _all_pages(repository, ClipFilter(), limit=40)

    # Then the pages hold every clip once, newest first, and only the last page is short
    clip_ids = [clip_id for page in pages for clip_id in page]
    newest_first = sorted(rows, key=lambda row: (row[1], row[0].clip_id), reverse=True)
    assert clip_ids == [state.clip_id for state, _ in newest_first]
    assert [len(page) for page in pages] == [40] * 6 + [10]


async def test_clips_arriving_while_paging_do_not_shift_the_next_page(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given 30 clips and the first page of 10 already read
    await insert_states(
        state_config, spread([clip_state("yard", 1_700_000_000 + n) for n in range(30)])
    )
    first = await repository.list_clips(ClipFilter(), limit=10)
    assert first is not None and first.next_key is not None

    # When a newer clip arrives before the second page is read
    await repository.save(clip_state("yard", 1_800_000_000))
    second = await repository.list_clips(ClipFilter(), limit=10, after=first.next_key)

    # Then the second page continues exactly where the first ended
    assert second is not None
    expected = [f"yard_{1_700_000_000 + n}.mp4" for n in range(19, 9, -1)]
    assert [listing.state.clip_id for listing in second.items] == expected


FILTER_CASES: dict[str, tuple[ClipFilter, set[str]]] = {
    "camera": (
        ClipFilter(camera="backyard"),
        {"backyard_1700000002.mp4", "backyard_1700000003.mp4"},
    ),
    "status": (ClipFilter(status=ClipStatus.ERROR), {"backyard_1700000003.mp4"}),
    "risk": (ClipFilter(risk_level=RiskLevel.LOW), {"backyard_1700000002.mp4"}),
    "activity": (ClipFilter(activity_type="delivery"), {"front_door_1700000001.mp4"}),
    "alerted": (
        ClipFilter(alerted=True),
        {"front_door_1700000000.mp4", "front_door_1700000001.mp4"},
    ),
    "not alerted": (
        ClipFilter(alerted=False),
        {"backyard_1700000002.mp4", "backyard_1700000003.mp4"},
    ),
    "class": (ClipFilter(detected_class="car"), {"front_door_1700000001.mp4"}),
    "absent class": (ClipFilter(detected_class="cat"), set()),
    "time range": (
        ClipFilter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)),
        {"front_door_1700000001.mp4", "backyard_1700000002.mp4"},
    ),
    "combined": (
        ClipFilter(camera="front_door", detected_class="car", alerted=True),
        {"front_door_1700000001.mp4"},
    ),
}


async def test_filters_narrow_the_list_to_matching_clips(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given four clips of two cameras with different detections, analyses and outcomes
    await insert_states(state_config, spread(varied_clips()))

    # When the clips are listed with each filter
    found: dict[str, set[str]] = {}
    for name, (clip_filter, _) in FILTER_CASES.items():
        page = await repository.list_clips(clip_filter, limit=50)
        assert page is not None
        found[name] = {listing.state.clip_id for listing in page.items}

    # Then each filter returns exactly the matching clips
    assert found == {name: expected for name, (_, expected) in FILTER_CASES.items()}


async def test_one_clip_comes_with_the_time_it_was_received(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given a stored clip received at a known time
    state = clip_state("porch", 1_700_000_000)
    await insert_states(state_config, [(state, T0)])

    # When it and a clip that does not exist are looked up
    found = await repository.get_listing(state.clip_id)
    missing = await repository.get_listing("porch_1600000000.mp4")

    # Then the first comes back whole with its received time, the second is None
    assert found is not None and found.state == state and found.received_at == T0
    assert missing is None


async def test_stats_count_clips_alerts_failures_and_vlm_spend_per_day(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given clips over two days (one alert and one VLM failure on the second) and one outside
    day_one = [clip_state("cam", 1_700_000_000 + n, alerted=False) for n in range(3)]
    day_two = [
        clip_state("cam", 1_700_100_000, tokens=(1000, 100), cost_usd=0.5),
        clip_state("cam", 1_700_100_001, risk=None, alerted=False, failed_stage=StageName.VLM),
    ]
    outside = clip_state("cam", 1_600_000_000)
    await insert_states(
        state_config,
        [(state, T0 + timedelta(minutes=n)) for n, state in enumerate(day_one)]
        + [(state, T0 + timedelta(days=1, minutes=n)) for n, state in enumerate(day_two)]
        + [(outside, T0 - timedelta(days=10))],
    )

    # When the statistics of those two days are read
    stats = await repository.stats(T0 - timedelta(hours=1), T0 + timedelta(days=2))

    # Then they count per day and in total, with failures per stage and the VLM spend
    assert stats is not None
    assert [(d.day, d.clips, d.alerts, d.errors) for d in stats.per_day] == [
        (date(2024, 5, 1), 3, 0, 0),
        (date(2024, 5, 2), 2, 1, 1),
    ]
    assert (stats.clips, stats.alerts, stats.errors) == (5, 1, 1)
    assert stats.stage_failures == {
        StageName.UPLOAD: 0,
        StageName.FILTER: 0,
        StageName.VLM: 1,
        StageName.NOTIFY: 0,
    }
    assert stats.vlm.analyzed_clips == 4
    assert (stats.vlm.input_tokens, stats.vlm.output_tokens) == (3 * 1200 + 1000, 3 * 80 + 100)
    assert stats.vlm.estimated_cost_usd == pytest.approx(3 * 0.002 + 0.5)


async def test_camera_activity_counts_clips_and_finds_the_latest(
    repository: ClipRepository, state_config: StateStoreConfig
) -> None:
    # Given two clips of one camera and one of another
    await insert_states(
        state_config,
        spread(
            [
                clip_state("a", 1_700_000_000),
                clip_state("b", 1_700_000_001),
                clip_state("a", 1_700_000_002),
            ]
        ),
    )

    # When the activity per camera is read
    activity = await repository.camera_activity()

    # Then each camera has its count and its latest received time
    assert activity is not None
    assert [(c.camera_name, c.clips, c.last_clip_at) for c in activity] == [
        ("a", 2, T0 + timedelta(minutes=2)),
        ("b", 1, T0 + timedelta(minutes=1)),
    ]


async def test_reads_answer_none_when_the_database_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a repository whose Postgres is down
    monkeypatch.setenv(DSN_ENV, "postgresql://homesec@127.0.0.1:9/none")
    repository = ClipRepository.from_config(state_store_config(tmp_path, write_timeout_s=2.0))

    # When the API's reads are called
    try:
        results = [
            await repository.list_clips(ClipFilter(), limit=10),
            await repository.get_listing("cam_1700000000.mp4"),
            await repository.stats(T0, T0 + timedelta(days=1)),
            await repository.camera_activity(),
        ]
    finally:
        await repository.aclose()

    # Then each answers "unknown" instead of raising
    assert results == [None, None, None, None]


@pytest.mark.parametrize("cursor", ["", "not base64!", "W10", "bnVsbA"])
def test_a_cursor_that_was_not_issued_is_rejected(cursor: str) -> None:
    # Given a cursor string that no page produced
    # When it is decoded
    # Then it is refused as invalid
    with pytest.raises(ValueError, match="invalid cursor"):
        PageKey.decode(cursor)


def test_a_page_key_survives_its_cursor_round_trip() -> None:
    # Given the key of a page end
    key = PageKey(datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), "front_door_1700000000.mp4")

    # When it is encoded and decoded
    decoded = PageKey.decode(key.encode())

    # Then it is the same key
    assert decoded == key
