"""frigate source: review items followed on a real broker, clips fetched from a fake Frigate
that speaks its documented MQTT payloads and HTTP routes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from homesec.errors import CheckFailed
from homesec.interfaces import AnalysisListener, ClipSource, SelfChecking
from homesec.models.clip import Clip
from homesec.models.enums import PluginType, RiskLevel
from homesec.models.known import RecognisedEntity
from homesec.models.results import AnalysisResult
from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_source, validate_plugin_config
from homesec.plugins.sources.frigate.api import FrigateUnreachable
from tests.services.frigate_fake import VERSION, FakeEvent, FakeFrigate, FakeReview

CAMERA = "front_door"
START = 1_700_000_000.0


def _source(frigate: FakeFrigate, spool: Path, **config: object) -> ClipSource:
    source = load_source(
        "frigate",
        {
            "camera_name": CAMERA,
            "api_url": frigate.url,
            "mqtt": {
                "host": frigate.broker.host,
                "port": frigate.broker.port,
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.2,
            },
            "topic_prefix": frigate.topic_prefix,
            "spool_dir": str(spool),
            "retry_min_s": 0.05,
            "retry_max_s": 0.2,
            "health_check_interval_s": 0.1,
            "catch_up_s": 10 * 365 * 86_400,
            **config,
        },
    )
    source.use_namer(ClipNames())
    return source


@asynccontextmanager
async def _running(source: ClipSource) -> AsyncIterator[list[Clip]]:
    clips: list[Clip] = []
    source.register_callback(clips.append)
    await source.start()
    try:
        async with asyncio.timeout(10):
            while not source.is_healthy():
                await asyncio.sleep(0.02)
        yield clips
    finally:
        await source.aclose()


async def _wait_for(clips: list[Clip], count: int, timeout: float = 10.0) -> list[Clip]:
    async with asyncio.timeout(timeout):
        while len(clips) < count:
            await asyncio.sleep(0.02)
    return clips


async def _caught_up(frigate: FakeFrigate) -> None:
    """Until the source has asked Frigate for the items it missed."""
    async with asyncio.timeout(10):
        while "/api/review" not in frigate.requests:
            await asyncio.sleep(0.02)


def _review(
    frigate: FakeFrigate, media: Path, review_id: str, offset: float = 0.0, **fields: Any
) -> FakeReview:
    review = FakeReview(
        id=review_id,
        camera=fields.pop("camera", CAMERA),
        start_time=START + offset,
        end_time=START + offset + 20,
        clip=media.read_bytes(),
        **fields,
    )
    return frigate.add_review(review)


@asynccontextmanager
async def _taken_with_write_back(
    tmp_path: Path, frigate: FakeFrigate, media: Path, review_id: str, events: list[FakeEvent]
) -> AsyncIterator[tuple[AnalysisListener, Clip]]:
    """A running source with write_back on, and the clip it took of an item with `events`."""
    source = _source(frigate, tmp_path, write_back=True)
    assert isinstance(source, AnalysisListener)
    async with _running(source) as clips:
        review = _review(frigate, media, review_id, events=events)
        await frigate.publish_review("end", review)
        [clip] = await _wait_for(clips, 1)
        yield source, clip


async def test_an_ended_review_item_is_fetched_and_handed_on_as_a_clip(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given the source following a fake Frigate, and an item that just ended
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.1-abc123")

        # When Frigate publishes the item's end on MQTT
        await fake_frigate.publish_review("end", review)

        # Then its clip is fetched, spooled under the clip_id rule and handed on
        [clip] = await _wait_for(clips, 1)
    assert clip.clip_id == f"{CAMERA}_1700000000.mp4"
    assert clip.camera_name == CAMERA and clip.source_backend == "frigate"
    assert clip.local_path.read_bytes() == person_clip.read_bytes()
    assert clip.duration_s == 20.0
    assert fake_frigate.clip_requests(review.id) == 1


async def test_new_and_update_messages_do_not_fetch_until_the_item_ends(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given the source and an item still going on
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.2-abc")

        # When Frigate says it started and changed
        await fake_frigate.publish_review("new", review)
        await fake_frigate.publish_review("update", review)
        await asyncio.sleep(0.5)

        # Then nothing is fetched yet; the end brings the clip
        assert clips == [] and fake_frigate.clip_requests(review.id) == 0
        await fake_frigate.publish_review("end", review)
        await _wait_for(clips, 1)


async def test_a_clip_frigate_has_not_written_yet_is_asked_for_again(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given an item whose clip Frigate answers 404 for the first three requests
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.3-late")
        fake_frigate.not_ready_for(review.id, 3)

        # When the item ends
        await fake_frigate.publish_review("end", review)

        # Then the source asks again until the clip is there
        [clip] = await _wait_for(clips, 1)
    assert fake_frigate.clip_requests(review.id) == 4
    assert clip.local_path.read_bytes() == person_clip.read_bytes()


async def test_an_item_without_a_clip_in_time_is_given_up_once_and_the_source_goes_on(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an item Frigate never has a clip for, then a normal one
    source = _source(fake_frigate, tmp_path, clip_ready_timeout_s=0.5)
    async with _running(source) as clips:
        missing = _review(fake_frigate, person_clip, "1700000000.4-none")
        fake_frigate.not_ready_for(missing.id, 10_000)
        with caplog.at_level(logging.ERROR):
            await fake_frigate.publish_review("end", missing)
            await asyncio.sleep(1.2)
        asked = fake_frigate.clip_requests(missing.id)
        later = _review(fake_frigate, person_clip, "1700000100.0-next", offset=100)

        # When the next item ends
        await fake_frigate.publish_review("end", later)

        # Then the first is reported once and not asked for again; the next one arrives
        [clip] = await _wait_for(clips, 1)
        await asyncio.sleep(0.3)
    assert clip.clip_id == f"{CAMERA}_1700000100.mp4"
    assert any("No clip for Frigate item 1700000000.4-none" in r.message for r in caplog.records)
    assert asked >= 2 and fake_frigate.clip_requests(missing.id) == asked


async def test_frigate_down_when_an_item_ends_makes_the_source_unhealthy_and_the_clip_comes_later(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given the source running and Frigate's API going down
    source = _source(fake_frigate, tmp_path)
    async with _running(source) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.5-down")
        fake_frigate.stop()

        # When an item ends while the API is down (its MQTT message still arrives)
        await fake_frigate.publish_review("end", review)
        async with asyncio.timeout(5):
            while source.is_healthy():
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert clips == []

        # Then, once Frigate is back, the clip is fetched and the source is healthy again
        fake_frigate.start()
        [clip] = await _wait_for(clips, 1)
        async with asyncio.timeout(5):
            while not source.is_healthy():
                await asyncio.sleep(0.05)
    assert clip.local_path.read_bytes() == person_clip.read_bytes()


@pytest.mark.parametrize(
    ("config", "fields", "taken"),
    [
        ({}, {"camera": "garage"}, False),
        ({"frigate_camera": "garage"}, {"camera": "garage"}, True),
        ({"severities": ["alert"]}, {"severity": "detection"}, False),
        ({"severities": ["detection"]}, {"severity": "detection"}, True),
        ({"labels": ["person"]}, {"objects": ["car"]}, False),
        ({"labels": ["person", "dog"]}, {"objects": ["car", "dog"]}, True),
        ({"zones": ["porch"]}, {"zones": ["sidewalk"]}, False),
        ({"zones": ["porch"]}, {"zones": ["sidewalk", "porch"]}, True),
        ({"zones": ["porch"]}, {"zones": []}, False),
    ],
)
async def test_filters_by_frigate_camera_severity_label_and_zone(
    tmp_path: Path,
    fake_frigate: FakeFrigate,
    person_clip: Path,
    config: dict[str, object],
    fields: dict[str, Any],
    taken: bool,
) -> None:
    # Given a source with a filter, and an item that passes it or not
    async with _running(_source(fake_frigate, tmp_path, **config)) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.6-filter", **fields)

        # When the item ends
        await fake_frigate.publish_review("end", review)
        await asyncio.sleep(0.6)

    # Then it is fetched only when it passes
    assert (len(clips) == 1) is taken
    assert (fake_frigate.clip_requests(review.id) == 1) is taken


async def test_items_that_ended_while_homesec_was_stopped_are_caught_up_once(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given an item taken in a first run
    first = _review(fake_frigate, person_clip, "1700000000.7-first")
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        await fake_frigate.publish_review("end", first)
        await _wait_for(clips, 1)

    # When two more items end while HomeSec is stopped (their messages go nowhere)
    away = [
        _review(fake_frigate, person_clip, "1700000060.0-away", offset=60),
        _review(fake_frigate, person_clip, "1700000120.0-away", offset=120),
    ]
    for review in away:
        await fake_frigate.publish_review("end", review)

    # Then the next start fetches those two from Frigate's review list, and not the first
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        caught = await _wait_for(clips, 2)
        await asyncio.sleep(0.3)
    assert sorted(clip.clip_id for clip in caught) == [
        f"{CAMERA}_1700000060.mp4",
        f"{CAMERA}_1700000120.mp4",
    ]
    assert fake_frigate.clip_requests(first.id) == 1
    assert "/api/review" in fake_frigate.requests


async def test_spooled_clips_survive_a_restart(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given a clip taken in a first run
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.8-kept")
        await fake_frigate.publish_review("end", review)
        [clip] = await _wait_for(clips, 1)

    # When a new source instance is asked for its spool (recovery, before start)
    spooled = _source(fake_frigate, tmp_path).spooled_clips()

    # Then the clip is there with its times
    assert [c.clip_id for c in spooled] == [clip.clip_id]
    assert spooled[0].start_ts == clip.start_ts and spooled[0].end_ts == clip.end_ts


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        json.dumps(
            {
                "type": "end",
                "after": {
                    "id": "../../config",
                    "camera": CAMERA,
                    "start_time": START,
                    "end_time": START + 1,
                    "severity": "alert",
                },
            }
        ).encode(),
        json.dumps(
            {
                "type": "end",
                "after": {
                    "id": "1700000000.1-x",
                    "camera": "../config",
                    "start_time": START,
                    "end_time": START + 1,
                    "severity": "alert",
                },
            }
        ).encode(),
        json.dumps(
            {
                "type": "end",
                "after": {
                    "id": "x",
                    "camera": CAMERA,
                    "start_time": "yesterday",
                    "severity": "alert",
                },
            }
        ).encode(),
    ],
)
async def test_garbage_and_hostile_messages_are_ignored_and_the_source_goes_on(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path, payload: bytes
) -> None:
    # Given the source running, its catch-up at the start done (it would take the item)
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        await _caught_up(fake_frigate)
        review = _review(fake_frigate, person_clip, "1700000000.9-real")

        # When a message that is not Frigate's format (or a path in an id or camera) arrives
        await fake_frigate.publish_review("end", review, payload)
        await asyncio.sleep(0.3)
        asked_for_garbage = [path for path in fake_frigate.requests if path.endswith(".mp4")]

        # Then nothing is requested for it, and the next real message is followed
        await fake_frigate.publish_review("end", review)
        [clip] = await _wait_for(clips, 1)
    assert asked_for_garbage == []
    assert clip.clip_id == f"{CAMERA}_1700000000.mp4"
    assert not [path for path in fake_frigate.requests if "config" in path]


async def test_a_body_that_is_not_an_mp4_is_not_a_clip(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given an item whose "clip" is an HTML error page served with 200
    source = _source(fake_frigate, tmp_path, clip_ready_timeout_s=0.4)
    async with _running(source) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.10-html")
        review.clip = b"<html>Could not create clip from recordings</html>"

        # When the item ends
        await fake_frigate.publish_review("end", review)
        await asyncio.sleep(1.0)

    # Then no clip is handed on and nothing is left in the spool
    assert clips == []
    assert not list((tmp_path / CAMERA).glob("*.mp4"))
    assert not list((tmp_path / CAMERA / ".parts").iterdir())


def test_config_needs_an_api_url_and_a_known_severity() -> None:
    # Given configs without api_url, or with a severity Frigate does not have
    # When they are validated
    # Then each is refused, naming the key
    with pytest.raises(ValueError, match="api_url"):
        validate_plugin_config(PluginType.SOURCE, "frigate", {"camera_name": CAMERA})
    with pytest.raises(ValueError, match="severities"):
        validate_plugin_config(
            PluginType.SOURCE,
            "frigate",
            {"camera_name": CAMERA, "api_url": "http://frigate:5000", "severities": ["urgent"]},
        )


async def test_doctor_checks_say_whether_frigate_answers(
    tmp_path: Path, fake_frigate: FakeFrigate
) -> None:
    # Given the source as doctor creates it (never started)
    source = _source(fake_frigate, tmp_path)
    assert isinstance(source, SelfChecking)
    checks = {check.name: check for check in source.self_checks()}

    # When its checks run with Frigate up, then down
    login = await checks["broker login"].run(2.0)
    seen = await checks["Frigate API"].run(2.0)
    fake_frigate.stop()
    with pytest.raises(CheckFailed) as failed:
        await checks["Frigate API"].run(2.0)

    # Then they say what they saw, and what to fix when Frigate does not answer
    assert login.startswith("logged in at ")
    assert VERSION in seen
    assert "api_url" in str(failed.value) and fake_frigate.url in str(failed.value)


async def test_frigate_detections_become_the_clips_filter_result(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given an item with two tracked objects and a false positive, and use_frigate_detections
    events = [
        FakeEvent(
            "1700000002.0-p1",
            "person",
            START + 2,
            score=0.91,
            box=(0.5, 0.25, 0.25, 0.5),
            zones=["porch"],
        ),
        FakeEvent("1700000005.0-c1", "car", START + 5, score=0.77),
        FakeEvent("1700000006.0-fp", "dog", START + 6, false_positive=True),
    ]
    source = _source(fake_frigate, tmp_path, use_frigate_detections=True)
    async with _running(source) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.11-det", events=events)

        # When the item ends
        await fake_frigate.publish_review("end", review)
        [clip] = await _wait_for(clips, 1)

    # Then the clip carries Frigate's labels, scores, times, zones and boxes (in the clip's
    # pixels)
    result = clip.source_detections
    assert result is not None and result.model == "frigate"
    assert result.detected_classes == ["person", "car"] and result.confidence == 0.91
    person = result.detections[0]
    assert person.first_seen_s == 2.0
    assert person.box == (960.0, 270.0, 1440.0, 810.0)  # the clip is 1920x1080
    assert person.zones == ["porch"] and result.detections[1].zones == []
    # And a new instance recovers the clip with them (the ledger keeps them)
    [recovered] = _source(fake_frigate, tmp_path).spooled_clips()
    assert recovered.source_detections == result


async def test_when_frigates_events_cannot_be_read_homesecs_detector_runs(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given use_frigate_detections and an item whose event Frigate has deleted meanwhile
    events = [FakeEvent("1700000002.0-gone", "person", START + 2)]
    source = _source(fake_frigate, tmp_path, use_frigate_detections=True)
    async with _running(source) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.12-gone", events=events)
        fake_frigate.deleted_events.add("1700000002.0-gone")

        # When the item ends
        await fake_frigate.publish_review("end", review)
        [clip] = await _wait_for(clips, 1)

    # Then the clip is handed on without detections: the pipeline's own filter looks at it
    assert clip.source_detections is None
    assert "/api/events/1700000002.0-gone" in fake_frigate.requests


async def test_write_back_puts_the_summary_on_the_items_events(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given a clip taken from an item with two events, with write_back on
    events = [
        FakeEvent("1700000002.0-w1", "person", START + 2),
        FakeEvent("1700000003.0-w2", "person", START + 3),
    ]
    async with _taken_with_write_back(
        tmp_path, fake_frigate, person_clip, "1700000000.13-wb", events
    ) as (source, clip):
        # When the pipeline tells the source of the clip's analysis
        await source.analysis_ready(clip, _analysis("A person in a red coat rings the bell."))

    # Then Frigate has the summary as the description of both events
    assert fake_frigate.descriptions == {
        "1700000002.0-w1": "A person in a red coat rings the bell.",
        "1700000003.0-w2": "A person in a red coat rings the bell.",
    }


async def test_a_known_person_the_vlm_recognised_becomes_the_person_events_sub_label(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given a clip of Alice arriving by car: a person event and a car event, write_back on
    events = [
        FakeEvent("1700000002.0-alice", "person", START + 2),
        FakeEvent("1700000001.0-car", "car", START + 1),
    ]
    async with _taken_with_write_back(
        tmp_path, fake_frigate, person_clip, "1700000000.20-sub", events
    ) as (source, clip):
        # When the analysis recognised Alice (a person of the household)
        analysis = _analysis("Alice parks and walks to the door.").model_copy(
            update={"known_entities": [RecognisedEntity(name="Alice", label="person")]}
        )
        await source.analysis_ready(clip, analysis)

    # Then the person event is sub-labelled Alice, the car is not, and both get the summary
    assert fake_frigate.sub_labels == {"1700000002.0-alice": "Alice"}
    assert set(fake_frigate.descriptions) == {"1700000002.0-alice", "1700000001.0-car"}


async def test_two_known_people_in_one_clip_name_no_person_event(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given a clip with one person event and write_back on
    events = [FakeEvent("1700000002.0-who", "person", START + 2)]
    async with _taken_with_write_back(
        tmp_path, fake_frigate, person_clip, "1700000000.21-two", events
    ) as (source, clip):
        # When the analysis recognised two known people
        both = [RecognisedEntity(name=n, label="person") for n in ("Alice", "Bob")]
        analysis = _analysis("Alice and Bob come home.").model_copy(update={"known_entities": both})
        await source.analysis_ready(clip, analysis)

    # Then no sub-label is guessed; the summary is written
    assert fake_frigate.sub_labels == {}
    assert fake_frigate.descriptions == {"1700000002.0-who": "Alice and Bob come home."}


async def test_write_back_goes_on_to_the_other_events_when_frigate_refuses_one(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given a clip taken from an item with two events, the first deleted in Frigate since
    events = [
        FakeEvent("1700000002.0-d1", "person", START + 2),
        FakeEvent("1700000003.0-d2", "person", START + 3),
    ]
    async with _taken_with_write_back(
        tmp_path, fake_frigate, person_clip, "1700000000.19-del", events
    ) as (source, clip):
        fake_frigate.deleted_events.add("1700000002.0-d1")

        # When the pipeline tells the source of the clip's analysis
        with pytest.raises(FrigateUnreachable):
            await source.analysis_ready(clip, _analysis("A courier leaves a parcel."))

    # Then the other event still gets the summary, and the refusal is reported
    assert fake_frigate.descriptions == {"1700000003.0-d2": "A courier leaves a parcel."}


async def test_without_write_back_nothing_is_written_to_frigate(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given a clip taken with write_back off (the default)
    source = _source(fake_frigate, tmp_path)
    assert isinstance(source, AnalysisListener)
    async with _running(source) as clips:
        events = [FakeEvent("1700000002.0-n1", "person", START + 2)]
        review = _review(fake_frigate, person_clip, "1700000000.14-nowb", events=events)
        await fake_frigate.publish_review("end", review)
        [clip] = await _wait_for(clips, 1)

        # When its analysis is ready
        await source.analysis_ready(clip, _analysis("Someone at the door."))

    # Then Frigate is not written to
    assert fake_frigate.descriptions == {}


def _analysis(summary: str) -> AnalysisResult:
    return AnalysisResult(
        risk_level=RiskLevel.MEDIUM,
        activity_type="delivery",
        summary=summary,
    )


async def test_an_item_still_being_fetched_at_a_stop_is_fetched_after_the_restart(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given an item whose clip Frigate has not written yet, and one that ended an hour later
    # and was taken (the newest item taken is where a catch-up starts)
    waiting = _review(fake_frigate, person_clip, "1700000000.15-wait")
    fake_frigate.not_ready_for(waiting.id, 10_000)
    newer = _review(fake_frigate, person_clip, "1700003600.0-newer", offset=3600)
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        await fake_frigate.publish_review("end", waiting)
        await fake_frigate.publish_review("end", newer)
        await _wait_for(clips, 1)

    # When HomeSec stops while the first is still asked for (a restart, or kill -9) and
    # starts again once Frigate has its clip
    fake_frigate.not_ready_for(waiting.id, 0)
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        # Then the catch-up fetches it: it was never taken
        [clip] = await _wait_for(clips, 1)
    assert clip.clip_id == f"{CAMERA}_1700000000.mp4"


async def test_a_clip_frigate_sends_with_a_broken_encoding_is_given_up_not_lost_silently(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an item whose clip comes labelled gzip but is not (a broken proxy in between)
    source = _source(fake_frigate, tmp_path, clip_ready_timeout_s=0.4)
    async with _running(source) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.16-gzip", clip_encoding="gzip")

        # When the item ends
        with caplog.at_level(logging.ERROR):
            await fake_frigate.publish_review("end", review)
            await asyncio.sleep(1.2)

    # Then it is asked for again and given up with a reason, like any unusable answer
    assert clips == []
    assert fake_frigate.clip_requests(review.id) >= 2
    assert any("No clip for Frigate item 1700000000.16-gzip" in r.message for r in caplog.records)
    assert not list((tmp_path / CAMERA / ".parts").iterdir())


async def test_the_wait_for_a_fetch_slot_does_not_count_against_clip_ready_timeout(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given two items whose clips Frigate takes 1.5 s to cut (the source fetches two at
    # once), and a third whose clip is not ready at its first request
    source = _source(fake_frigate, tmp_path, clip_ready_timeout_s=1.0)
    async with _running(source) as clips:
        slow = [
            _review(fake_frigate, person_clip, f"17000000{n}0.0-slow", n * 10.0, clip_delay_s=1.5)
            for n in (1, 2)
        ]
        late = _review(fake_frigate, person_clip, "1700000000.17-queued")
        fake_frigate.not_ready_for(late.id, 1)

        # When the three end at once, the third waiting longer than its timeout for a slot
        for review in (*slow, late):
            await fake_frigate.publish_review("end", review)

        # Then the third is still asked for again once it has a slot, and its clip comes
        await _wait_for(clips, 3, timeout=15)
    assert fake_frigate.clip_requests(late.id) == 2


async def test_one_unreadable_item_in_frigates_review_list_does_not_stop_the_catch_up(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path
) -> None:
    # Given two items that ended while HomeSec was stopped, and next to them in Frigate's
    # review list one HomeSec cannot read (a path for an id)
    missed = _review(fake_frigate, person_clip, "1700000000.18-missed")
    _review(fake_frigate, person_clip, "../../config", offset=30)
    also = _review(fake_frigate, person_clip, "1700000060.0-also", offset=60)

    # When HomeSec starts and catches up
    async with _running(_source(fake_frigate, tmp_path)) as clips:
        # Then both readable items are fetched, and nothing is asked for the other
        caught = await _wait_for(clips, 2)
    assert sorted(clip.clip_id for clip in caught) == [
        f"{CAMERA}_1700000000.mp4",
        f"{CAMERA}_1700000060.mp4",
    ]
    assert fake_frigate.clip_requests(missed.id) == 1 and fake_frigate.clip_requests(also.id) == 1
    assert not [path for path in fake_frigate.requests if "config" in path]


async def test_a_clip_frigate_trickles_out_is_cut_off_and_asked_for_again(
    tmp_path: Path, fake_frigate: FakeFrigate, person_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Frigate that sends an item's 4.6 MB clip 64 KiB every 0.1 s (7 s in all), and a
    # source that gives one download 1 s
    source = _source(fake_frigate, tmp_path, download_timeout_s=1.0)
    async with _running(source) as clips:
        review = _review(fake_frigate, person_clip, "1700000000.30-slow")
        review.clip_trickle_s = 0.1

        # When the item ends
        with caplog.at_level(logging.WARNING):
            await fake_frigate.publish_review("end", review)
            await asyncio.sleep(2.6)

        # Then each download is cut off after 1 s and asked for again; no clip is handed on
        assert clips == []
        assert fake_frigate.clip_requests(review.id) >= 2
    assert any("took over 1 s" in record.getMessage() for record in caplog.records)
