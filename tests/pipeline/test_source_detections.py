"""What a source already knows about its clip: an NVR's detections stand in for the filter,
and a source that listens is told of each new analysis (best effort)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from homesec.models.clip import Clip
from homesec.models.enums import ClipStatus, StageStatus
from homesec.models.results import AnalysisResult, Detection, FilterResult
from tests.fakes.builders import clip_from
from tests.fakes.plugins import FakeFilter, FakeVLM
from tests.pipeline.conftest import BuildPipeline

NVR_SAW_A_PERSON = FilterResult(
    detected_classes=["person"],
    confidence=0.9,
    sampled_frames=0,
    model="nvr",
    detections=[Detection(class_name="person", confidence=0.9, first_seen_s=1.0, box=(1, 2, 3, 4))],
)


class _Listener:
    def __init__(self, fail: bool = False) -> None:
        self.told: list[tuple[str, str]] = []
        self._fail = fail

    async def analysis_ready(self, clip: Clip, analysis: AnalysisResult) -> None:
        self.told.append((clip.clip_id, analysis.summary))
        if self._fail:
            raise ConnectionError("the NVR is down")


async def test_a_clip_with_the_sources_detections_is_not_filtered_again(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a pipeline whose own filter would see nothing, and a clip an NVR saw a person in
    filter_config = {"backend": "fake_filter", "config": {"classes": []}}
    async with build_pipeline(filter=filter_config) as components:
        clip = clip_from(person_clip, tmp_path / "spool").model_copy(
            update={"source_detections": NVR_SAW_A_PERSON}
        )

        # When the clip is processed
        state = await components.pipeline.process(clip)

        # Then the NVR's detections are the clip's, the filter never ran, and the VLM looked
        assert isinstance(components.object_filter, FakeFilter)
        assert components.object_filter.calls == []
        assert state.filter_result == NVR_SAW_A_PERSON
        assert state.stage("filter").status == StageStatus.OK
        assert isinstance(components.analyzer, FakeVLM)
        assert components.analyzer.calls == [clip.clip_id]


async def test_a_listening_source_is_told_of_the_analysis_once(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a pipeline and a source of the camera that listens
    async with build_pipeline() as components:
        listener = _Listener()
        components.pipeline.listen("front_door", listener)
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed, and once more (a later round of a done clip)
        await components.pipeline.process(clip)
        await components.pipeline.process(clip)

        # Then the source was told of the analysis once
        assert listener.told == [(clip.clip_id, "A person walks to the door.")]


async def test_a_source_that_fails_to_listen_does_not_hold_up_the_clip(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a listening source whose NVR is down
    async with build_pipeline() as components:
        components.pipeline.listen("front_door", _Listener(fail=True))
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed
        with caplog.at_level(logging.WARNING):
            state = await components.pipeline.process(clip)

    # Then the clip is done anyway, and the failure is logged
    assert state.status == ClipStatus.DONE
    assert any("was not told of its analysis" in r.message for r in caplog.records)
