"""yolo filter: verdicts on real footage, early exit, overrides, damaged clips, the worker pool."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from homesec.interfaces import ObjectFilter
from homesec.models.results import FilterOverrides
from homesec.plugins.filters.yolo.plugin import YoloFilter, YoloFilterConfig, YoloFilterError
from homesec.plugins.registry import load_filter
from homesec.video.clip import VideoReadError
from tests.plugins.filters.conftest import VEHICLES
from tests.video.clips import scramble, truncate


async def test_people_are_found_at_the_front_door(yolo: YoloFilter, person_clip: Path) -> None:
    # Given the filter looking for people and vehicles
    # When it checks a clip with people from the first frame
    result = await yolo.detect(person_clip)

    # Then a person is reported, first seen at the start, boxed in 1080p pixels
    assert "person" in result.detected_classes
    assert result.model == "yolox_nano"
    assert 0.5 <= result.confidence <= 1.0
    person = next(d for d in result.detections if d.class_name == "person")
    assert person.first_seen_s == 0.0
    x1, y1, x2, y2 = person.box
    assert 0 <= x1 < x2 <= 1920 and 0 <= y1 < y2 <= 1080
    assert x2 - x1 > 20 and y2 - y1 > 40


@pytest.mark.slow
async def test_nothing_is_found_on_the_empty_lawn(yolo: YoloFilter, empty_scene_clip: Path) -> None:
    # Given the filter looking for people and vehicles
    # When it checks 20 s of an empty lawn
    result = await yolo.detect(empty_scene_clip)

    # Then nothing is reported, after looking at the whole clip at 2 fps
    assert result.detected_classes == []
    assert result.detections == []
    assert result.confidence == 0.0
    assert result.sampled_frames == 40


@pytest.mark.slow
async def test_a_person_who_appears_only_at_the_end_is_found(
    yolo: YoloFilter, late_person_clip: Path
) -> None:
    # Given a clip of 16 s of empty lawn, then 4 s with people
    # When the filter checks it
    result = await yolo.detect(late_person_clip)

    # Then the person is found in the last seconds
    assert "person" in result.detected_classes
    person = next(d for d in result.detections if d.class_name == "person")
    assert 16.0 <= person.first_seen_s < 20.0
    x1, y1, x2, y2 = person.box
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360


async def test_a_positive_clip_is_decided_on_its_first_frame(
    yolo: YoloFilter, person_clip: Path
) -> None:
    # Given a clip with people from the first frame
    # When the filter checks it
    result = await yolo.detect(person_clip)

    # Then it stops after the first sampled frame
    assert result.sampled_frames == 1


async def test_a_full_scan_lists_every_place_each_class_was_seen_in(
    yolo: YoloFilter, person_clip: Path
) -> None:
    # Given the front door's footage: people walking past a parked car
    # When the filter checks the whole clip (as it does for stationary objects)
    result = await yolo.detect(person_clip, FilterOverrides(full_scan=True))

    # Then it looked at every sampled frame; the car stood in one place in (nearly) all of
    # them, and the people were seen in many places, none held for long
    assert result.sampled_frames == 40
    found = {d.class_name: d for d in result.detections}
    [car_place] = found["car"].places
    assert car_place.frames >= 35 and car_place.box == pytest.approx(found["car"].box, abs=40)
    people = found["person"].places
    assert 5 < len(people) <= 16
    assert all(place.frames < 20 for place in people)
    assert sum(place.frames for place in people) >= 40


@pytest.mark.slow
async def test_min_hits_and_max_frames_bound_the_scan(
    yolox_nano: Path, person_clip: Path, empty_scene_clip: Path
) -> None:
    # Given a filter that wants a class in 3 frames, and looks at 5 frames at most
    yolo = YoloFilter.create(YoloFilterConfig(model=str(yolox_nano), min_hits=3, max_frames=5))
    try:
        # When it checks a positive and a negative clip
        positive = await yolo.detect(person_clip)
        negative = await yolo.detect(empty_scene_clip)
    finally:
        await yolo.aclose()

    # Then the positive one stops at the third hit, the negative one after 5 frames
    assert positive.detected_classes == ["person"]
    assert positive.sampled_frames == 3
    assert negative.detected_classes == []
    assert negative.sampled_frames == 5


@pytest.mark.slow
async def test_overrides_change_classes_and_confidence_per_call(
    yolo: YoloFilter, person_clip: Path
) -> None:
    # Given the filter looking for people and vehicles
    # When one call asks only for cars, another for a confidence no box reaches
    cars = await yolo.detect(person_clip, FilterOverrides(classes=["car"]))
    strict = await yolo.detect(person_clip, FilterOverrides(min_confidence=0.99))

    # Then the first reports cars only, the second nothing
    assert cars.detected_classes == ["car"]
    assert strict.detected_classes == []
    assert strict.sampled_frames == 40


async def test_overrides_with_an_unknown_class_are_refused(
    yolo: YoloFilter, person_clip: Path
) -> None:
    # Given the filter
    # When a call asks for a class the model does not know
    # Then the call fails, naming the class
    with pytest.raises(YoloFilterError, match="unknown class 'unicorn'"):
        await yolo.detect(person_clip, FilterOverrides(classes=["unicorn"]))


@pytest.mark.parametrize(
    "damage", ["missing", "empty", "text", "cut", "cut_after_index", "scrambled"]
)
async def test_damaged_clips_fail_readably_and_the_filter_keeps_working(
    yolo: YoloFilter,
    tmp_path: Path,
    person_clip: Path,
    faststart_empty_scene: Path,
    damage: str,
) -> None:
    # Given a clip that is missing, empty, not a video, truncated or corrupt
    path = tmp_path / f"{damage}_1700000000.mp4"
    match damage:
        case "empty":
            path.write_bytes(b"")
        case "text":
            path.write_text("not a video\n" * 100)
        case "cut":
            truncate(person_clip, path, keep=0.4)
        case "cut_after_index":
            truncate(faststart_empty_scene, path, keep=0.5)
        case "scrambled":
            scramble(person_clip, path, start=0.01)

    # When the filter checks it
    with pytest.raises(YoloFilterError, match="cannot read the clip") as caught:
        await yolo.detect(path)

    # Then the error says why, keeps its cause, and the next clip is checked as usual
    assert isinstance(caught.value.cause, VideoReadError)
    assert caught.value.__cause__ is caught.value.cause
    assert str(path) in str(caught.value)
    assert "person" in (await yolo.detect(person_clip)).detected_classes


@pytest.mark.slow
async def test_the_event_loop_runs_while_a_clip_is_checked(
    yolo: YoloFilter, empty_scene_clip: Path
) -> None:
    # Given a ticker on the event loop
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())

    # When the filter scans a whole clip
    await yolo.detect(empty_scene_clip)
    ticker.cancel()

    # Then the loop kept ticking meanwhile
    assert ticks >= 20


@pytest.mark.slow
async def test_a_dead_worker_is_replaced(yolox_nano: Path, person_clip: Path) -> None:
    # Given a filter whose worker is up, loaded from the registry's entry point
    before = {process.pid for process in multiprocessing.active_children()}
    yolo = load_filter("yolo", {"model": str(yolox_nano)})
    assert isinstance(yolo, ObjectFilter)
    try:
        await yolo.detect(person_clip)
        workers = {p.pid for p in multiprocessing.active_children()} - before
        assert workers

        # When its worker process dies
        for pid in workers:
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        with pytest.raises(YoloFilterError, match="detector process died"):
            await yolo.detect(person_clip)

        # Then the next clip is checked by a new worker
        assert "person" in (await yolo.detect(person_clip)).detected_classes
    finally:
        await yolo.aclose()

    # And once shut down, the filter refuses clips
    with pytest.raises(YoloFilterError, match="shut down"):
        await yolo.detect(person_clip)
    await yolo.aclose()


@pytest.mark.slow
async def test_a_missing_execution_provider_falls_back_to_cpu(
    yolox_nano: Path, person_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a filter asking for CoreML first (never installed on Linux)
    yolo = YoloFilter.create(
        YoloFilterConfig(model=str(yolox_nano), providers=["coreml", "cpu"], classes=VEHICLES)
    )
    try:
        # When it checks a clip
        result = await yolo.detect(person_clip)
    finally:
        await yolo.aclose()

    # Then it warned, and ran on the CPU
    assert "CoreMLExecutionProvider is not installed" in caplog.text
    assert "car" in result.detected_classes


RIGHT_HALF = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
TOP_LEFT_CORNER = [(0.0, 0.0), (0.05, 0.0), (0.05, 0.05), (0.0, 0.05)]


async def test_each_detection_lists_the_zones_it_stood_in(
    yolo: YoloFilter, person_clip: Path
) -> None:
    # Given the camera's zones: the right half of the picture, where people walk, and a
    # corner of sky
    zones = {"right": RIGHT_HALF, "sky": TOP_LEFT_CORNER}

    # When the clip of people at the front door is checked with them
    result = await yolo.detect(person_clip, FilterOverrides(zones=zones))

    # Then the person lists the zone people stood in, not the sky
    [person] = [d for d in result.detections if d.class_name == "person"]
    assert person.zones == ["right"]


async def test_with_zones_a_class_seen_only_outside_them_is_looked_for_longer(
    yolo: YoloFilter, person_clip: Path
) -> None:
    # Given a zone nobody stands in
    sky = FilterOverrides(zones={"sky": TOP_LEFT_CORNER})

    # When the clip is checked without zones and with that one
    plain = await yolo.detect(person_clip)
    zoned = await yolo.detect(person_clip, sky)

    # Then without zones the scan stops once the person is confirmed; with the zone it goes
    # on (they might still walk into it), and the person is reported in no zone
    assert plain.sampled_frames < zoned.sampled_frames
    [person] = [d for d in zoned.detections if d.class_name == "person"]
    assert person.zones == []
