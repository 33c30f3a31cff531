"""Stationary objects: a box that stands where the same class stood in the camera's earlier
clips (long enough ago) counts for nothing until it moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homesec.models.enums import StageName, StageStatus
from homesec.models.results import iou
from homesec.models.state import ClipStateData
from tests.fakes.builders import clip_from
from tests.fakes.plugins import FakeVLM
from tests.pipeline.conftest import BuildPipeline

T0 = 1_700_000_000
STATUE = (100.0, 100.0, 300.0, 500.0)
MOVED = (700.0, 100.0, 900.0, 500.0)
ON = {"enabled": True}  # off by default (see the README)


def test_iou_of_boxes() -> None:
    # Given boxes that are the same, half over each other, and apart
    # When their overlap is measured
    # Then it is 1, a third, and 0
    assert iou(STATUE, STATUE) == 1.0
    assert iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(1 / 3)
    assert iou(STATUE, MOVED) == 0.0


def _filter_seeing(box: tuple[float, float, float, float]) -> dict[str, Any]:
    return {"backend": "fake_filter", "config": {"classes": ["person"], "box": list(box)}}


async def _process(
    build_pipeline: BuildPipeline, clip_path: Path, tmp_path: Path, ts: int, box: Any
) -> tuple[ClipStateData, list[str]]:
    """One clip of the camera at `ts`, with the detector seeing a person at `box`."""
    async with build_pipeline(filter=_filter_seeing(box), stationary=ON) as components:
        clip = clip_from(clip_path, tmp_path / "spool", ts=ts)
        state = await components.pipeline.process(clip)
    assert isinstance(components.analyzer, FakeVLM)
    return state, components.analyzer.calls


async def test_a_statue_seen_as_a_person_alerts_once_then_not_until_it_moves(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a "person" the detector finds at the same place clip after clip (a statue)
    first, first_calls = await _process(build_pipeline, person_clip, tmp_path, T0, STATUE)
    assert first.alert_decision is not None and first.alert_decision.notify is True

    # When it is still there in a clip 5 minutes later, then 20 minutes later, then moved
    soon, soon_calls = await _process(build_pipeline, person_clip, tmp_path, T0 + 300, STATUE)
    later, later_calls = await _process(build_pipeline, person_clip, tmp_path, T0 + 1200, STATUE)
    moved, moved_calls = await _process(build_pipeline, person_clip, tmp_path, T0 + 1500, MOVED)

    # Then the first clip and the one 5 minutes on (someone may wait at a door) are analysed;
    # 20 minutes on it is stationary: no VLM, no alert; once moved it counts again
    assert first_calls and soon_calls and moved_calls
    assert later_calls == []
    assert later.filter_result is not None and later.filter_result.detections[0].stationary
    assert later.stage(StageName.VLM).status == StageStatus.SKIPPED
    assert later.alert_decision is not None and later.alert_decision.notify is False
    assert soon.filter_result is not None and not soon.filter_result.detections[0].stationary
    assert moved.filter_result is not None and not moved.filter_result.detections[0].stationary
    assert moved.alert_decision is not None and moved.alert_decision.notify is True


async def test_by_default_nothing_is_marked(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given the default config (stationary detection off)
    # When the same box is seen 20 minutes apart
    for ts in (T0, T0 + 1200):
        async with build_pipeline(filter=_filter_seeing(STATUE)) as components:
            state = await components.pipeline.process(
                clip_from(person_clip, tmp_path / "spool", ts=ts)
            )

    # Then the second clip is analysed like the first
    assert state.filter_result is not None and not state.filter_result.detections[0].stationary
    assert isinstance(components.analyzer, FakeVLM) and components.analyzer.calls


async def test_the_real_detector_finds_the_parked_car_stationary_and_the_walkers_not(
    build_pipeline: BuildPipeline, person_clip: Path, models_dir: Path, tmp_path: Path
) -> None:
    # Given the real detector looking for people and cars, and the front door's footage
    # (people walking past a parked car) recorded twice, 20 minutes apart
    yolo = {
        "backend": "yolo",
        "config": {"model": str(models_dir / "yolox_nano.onnx"), "classes": ["person", "car"]},
    }
    states = []
    for ts in (T0, T0 + 1200):
        async with build_pipeline(filter=yolo, stationary=ON) as components:
            clip = clip_from(person_clip, tmp_path / "spool", ts=ts)
            states.append(await components.pipeline.process(clip))

    # Then in the second clip the car, in one place all along, is stationary; the people,
    # in many places, are not, so the clip is still analysed and alerts
    first, second = states
    assert first.filter_result is not None
    assert not any(d.stationary for d in first.filter_result.detections)
    assert second.filter_result is not None
    found = {d.class_name: d for d in second.filter_result.detections}
    assert found["car"].stationary and len(found["car"].places) == 1
    assert not found["person"].stationary and len(found["person"].places) > 1
    assert isinstance(components.analyzer, FakeVLM) and len(components.analyzer.calls) == 1
    assert second.alert_decision is not None and second.alert_decision.notify is True


async def test_an_intruder_next_to_the_statue_is_not_hidden_by_it(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a "person" statue that has stood still for an hour of clips
    await _process(build_pipeline, person_clip, tmp_path, T0, STATUE)
    await _process(build_pipeline, person_clip, tmp_path, T0 + 1800, STATUE)

    # When a clip comes where the detector sees the statue and, in a few frames, someone
    # walking elsewhere (the class "person" then stands in more than one place)
    walker = {
        "backend": "fake_filter",
        "config": {"classes": ["person"], "box": list(STATUE), "also_at": list(MOVED)},
    }
    async with build_pipeline(filter=walker, stationary=ON) as components:
        state = await components.pipeline.process(
            clip_from(person_clip, tmp_path / "spool", ts=T0 + 3600)
        )

    # Then the person is not stationary: the clip is analysed and alerts
    assert state.filter_result is not None and not state.filter_result.detections[0].stationary
    assert isinstance(components.analyzer, FakeVLM) and len(components.analyzer.calls) == 1
    assert state.alert_decision is not None and state.alert_decision.notify is True
