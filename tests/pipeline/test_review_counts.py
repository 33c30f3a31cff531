"""The clips waiting for review, as the notifiers that show them (Home Assistant) hear it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.builders import clip_from
from tests.fakes.plugins import RecordingNotifier
from tests.pipeline.conftest import BuildPipeline


async def test_an_analysis_done_again_that_drops_the_review_request_updates_the_count(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a clip the VLM asked a person to review (the count says one)
    def sections(review: bool) -> dict[str, Any]:
        return {
            "vlm": {
                "backend": "fake_vlm",
                "run_mode": "trigger_only",
                "config": {"requires_review": review},
            },
            "notifiers": [{"backend": "fake_recorder", "config": {}}],
        }

    async with build_pipeline(**sections(True)) as components:
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
        recorder = components.notifiers[0]
        assert isinstance(recorder, RecordingNotifier)
        await _until(lambda: {"front_door": 1} in recorder.review_counts)

    # When it is analysed again by a VLM that no longer asks for a review
    async with build_pipeline(**sections(False)) as components:
        assert await components.pipeline.reanalyse(state) is None
        recorder = components.notifiers[0]
        assert isinstance(recorder, RecordingNotifier)

        # Then the count published afterwards says none waits
        await _until(lambda: recorder.review_counts[-1:] == [{"front_door": 0}])


async def _until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)
