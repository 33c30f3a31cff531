"""When the AI is down: a person is still an alert, saying why the analysis is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homesec.models.enums import ClipStatus, StageName, StageStatus
from tests.fakes.builders import clip_from
from tests.fakes.plugins import RecordingNotifier
from tests.pipeline.conftest import BuildPipeline
from tests.services.openai_server import OpenAIServer, ScriptedReply

RECORDER = {"backend": "fake_recorder", "config": {}}


def _openai(server: OpenAIServer) -> dict[str, Any]:
    return {
        "backend": "openai",
        "run_mode": "trigger_only",
        "config": {
            "base_url": server.base_url,
            "model": "test-vlm",
            "max_retries": 0,
            "preprocessing": {"max_frames": 2, "max_size": 64},
        },
    }


def _recorder(components: Any) -> RecordingNotifier:
    notifier = components.notifiers[0]
    assert isinstance(notifier, RecordingNotifier)
    return notifier


@pytest.mark.slow
async def test_a_person_is_alerted_when_the_vlm_answers_http_500(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    openai_server: OpenAIServer,
) -> None:
    # Given the detector finds a person and the VLM answers HTTP 500 to everything
    openai_server.default_reply = ScriptedReply.error(500)
    async with build_pipeline(vlm=_openai(openai_server), notifiers=[RECORDER]) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the alert goes out anyway, saying a person was seen and why there is no analysis
        [alert] = _recorder(components).alerts
    assert alert.notify_reason.startswith("person detected; analysis unavailable (")
    assert alert.notify_reason == "person detected; analysis unavailable (HTTP 500)"
    assert "VLM skipped" not in alert.notify_reason
    assert alert.risk_level is None and alert.summary is None
    assert state.stage(StageName.VLM).status == StageStatus.ERROR
    assert state.alert_decision is not None and state.alert_decision.notify


@pytest.mark.slow
async def test_on_vlm_failure_skip_keeps_quiet(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    openai_server: OpenAIServer,
) -> None:
    # Given a failing VLM and a policy that asks not to alert without an analysis
    openai_server.default_reply = ScriptedReply.error(500)
    async with build_pipeline(
        vlm=_openai(openai_server),
        alert_policy={"backend": "default", "config": {"on_vlm_failure": "skip"}},
        notifiers=[RECORDER],
    ) as components:
        # When a clip with a person is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then no alert goes out, and the decision says why
        assert _recorder(components).alerts == []
    assert state.alert_decision is not None and not state.alert_decision.notify
    assert "analysis unavailable" in state.alert_decision.notify_reason
    assert "on_vlm_failure skip" in state.alert_decision.notify_reason


async def test_a_vlm_failure_without_a_trigger_class_does_not_alert(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given the VLM runs on every clip (always), fails, and the detector only sees a car
    async with build_pipeline(
        filter={"backend": "fake_filter", "config": {"classes": ["car"]}},
        vlm={"backend": "fake_vlm", "run_mode": "always", "config": {"fail": True}},
        notifiers=[RECORDER],
    ) as components:
        # When a clip is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then there is no alert: nothing the user asked to hear about was seen
        assert _recorder(components).alerts == []


async def test_on_exhausted_fail_only_logs_and_the_person_is_still_alerted(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a failing VLM and retry.on_exhausted: fail
    async with build_pipeline(
        vlm={"backend": "fake_vlm", "run_mode": "trigger_only", "config": {"fail": True}},
        retry={"max_attempts": 2, "backoff_s": 0.01, "on_exhausted": "fail"},
        notifiers=[RECORDER],
    ) as components:
        # When a clip with a person is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then no system alert goes out, but the person is alerted; the clip is in error
        recorder = _recorder(components)
        assert recorder.system_alerts == []
        [alert] = recorder.alerts
        assert alert.notify_reason.startswith("person detected; analysis unavailable")
    assert state.status == ClipStatus.ERROR
    assert state.stage(StageName.VLM).status == StageStatus.ERROR


async def test_on_exhausted_alert_and_continue_is_the_default(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a failing VLM and the default retry settings
    async with build_pipeline(
        vlm={"backend": "fake_vlm", "run_mode": "trigger_only", "config": {"fail": True}},
        notifiers=[RECORDER],
    ) as components:
        # When a clip with a person is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then a system alert names the VLM and the clip went on to its alert
        recorder = _recorder(components)
        [system_alert] = recorder.system_alerts
        assert system_alert.stage == StageName.VLM
        [alert] = recorder.alerts
        assert "analysis unavailable (VLM endpoint timed out)" in alert.notify_reason


async def test_a_vlm_outage_is_one_system_alert_not_one_per_clip(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a VLM that is down
    down = tmp_path / "vlm-down"
    down.touch()
    vlm = {"backend": "fake_vlm", "config": {"fail_while": str(down)}}
    async with build_pipeline(vlm=vlm, notifiers=[RECORDER]) as components:
        # When three clips come during the outage, one after it, and one in a second outage
        pipeline = components.pipeline
        for ts in (1700000000, 1700000001, 1700000002):
            await pipeline.process(clip_from(person_clip, tmp_path / "spool", ts=ts))
        down.unlink()
        await pipeline.process(clip_from(person_clip, tmp_path / "spool", ts=1700000003))
        down.touch()
        await pipeline.process(clip_from(person_clip, tmp_path / "spool", ts=1700000004))

        # Then each outage was one system alert, and every person was alerted
        recorder = _recorder(components)
        alerted = [a.clip_id for a in recorder.system_alerts]
        assert alerted == ["front_door_1700000000.mp4", "front_door_1700000004.mp4"]
        assert len(recorder.alerts) == 5
