"""More than one VLM: one that fails or takes too long hands the clip to the next; each one's
calls, failures, time, tokens and cost are counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homesec import metrics
from homesec.models.enums import StageName, StageStatus
from homesec.pipeline.providers import VLMProviders
from tests.fakes.builders import clip_from
from tests.pipeline.conftest import BuildPipeline
from tests.services.openai_server import OpenAIServer, ScriptedReply


def _vlm(first: dict[str, Any], **section: Any) -> dict[str, Any]:
    """The first VLM's section, with a fake VLM as the fallback `cloud`."""
    return {
        "run_mode": "trigger_only",
        **first,
        "fallbacks": [
            {"name": "cloud", "backend": "fake_vlm", "config": {"summary": "From the cloud."}}
        ],
        **section,
    }


async def test_a_failing_vlm_hands_the_clip_to_the_next(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path, openai_server: OpenAIServer
) -> None:
    # Given a local OpenAI-compatible server first (answering errors), a cloud VLM next
    openai_server.enqueue(ScriptedReply.error(500))
    local = {
        "name": "local",
        "backend": "openai",
        "config": {"base_url": openai_server.base_url, "model": "m", "max_retries": 0},
    }
    async with build_pipeline(vlm=_vlm(local)) as components:
        # When a clip of a person is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
        stats = {s.name: s for s in components.pipeline.vlm_stats()}

    # Then the cloud VLM's analysis is the clip's, saying who answered; the local server was
    # asked once and failed
    assert isinstance(components.analyzer, VLMProviders)
    assert state.analysis_result is not None
    assert state.analysis_result.summary == "From the cloud."
    assert state.analysis_result.provider == "cloud"
    assert len(openai_server.requests) == 1
    assert (stats["local"].calls, stats["local"].failures) == (1, 1)
    assert (stats["cloud"].calls, stats["cloud"].failures) == (1, 0)
    exposed = metrics.exposition()[0].decode()
    assert 'homesec_vlm_provider_calls_total{outcome="error",provider="local"}' in exposed


async def test_a_vlm_slower_than_its_timeout_hands_the_clip_to_the_next(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a first VLM that takes 5 s, given 0.3 s
    slow = {"name": "local", "backend": "fake_vlm", "config": {"delay_s": 5.0}, "timeout_s": 0.3}
    async with build_pipeline(vlm=_vlm(slow)) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then the fallback answered, soon after the first's time was up
    assert state.analysis_result is not None and state.analysis_result.provider == "cloud"
    vlm = state.stage(StageName.VLM)
    assert vlm.status == StageStatus.OK and vlm.attempts == 1


async def test_when_every_vlm_fails_the_person_still_alerts_saying_why(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given two VLMs that both fail
    broken = {"name": "local", "backend": "fake_vlm", "config": {"fail": True}}
    section = _vlm(broken)
    section["fallbacks"][0]["config"] = {"fail": True}
    async with build_pipeline(vlm=section) as components:
        # When a clip of a person is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then the alert goes out on the detection alone, saying every VLM failed
    assert state.analysis_result is None
    assert state.alert_decision is not None and state.alert_decision.notify
    assert "every VLM failed" in state.alert_decision.notify_reason
