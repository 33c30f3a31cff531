"""ClipPipeline behaviour: stages, partial failures, retries, run modes, resumption."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from homesec.models.enums import ClipStatus, EventType, RiskLevel, StageName, StageStatus
from homesec.models.state import ClipStateData
from tests.fakes.builders import clip_from
from tests.fakes.plugins import FailingStorage, FakeFilter, FakeVLM, RecordingNotifier
from tests.pipeline.conftest import BuildPipeline
from tests.services.openai_server import OpenAIServer, ScriptedReply

RECORDER = {"backend": "fake_recorder", "config": {}}


async def test_clip_with_a_person_is_uploaded_analyzed_and_alerted(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a pipeline whose filter sees a person and whose VLM reports high risk
    async with build_pipeline(notifiers=[RECORDER]) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed
        state = await components.pipeline.process(clip)

        # Then every stage is ok, the clip is in storage and one alert carries its link
        assert state.status == ClipStatus.DONE
        assert all(log.status == StageStatus.OK for log in state.stages.values())
        assert state.storage_uri is not None
        assert (tmp_path / "storage" / "front_door" / clip.clip_id).read_bytes() == (
            person_clip.read_bytes()
        )
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier)
        [alert] = notifier.alerts
        assert alert.clip_id == alert.dedupe_key == clip.clip_id
        assert alert.risk_level == RiskLevel.HIGH
        assert alert.view_url == state.view_url
        assert alert.upload_failed is False
        assert alert.notify_reason.startswith("risk_level=high")


async def test_state_and_events_are_stored_through_the_repository(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a pipeline on the embedded SQLite store
    async with build_pipeline(notifiers=[RECORDER]) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed
        await components.pipeline.process(clip)

        # Then the stored state validates and the lifecycle is in clip_events, in order
        stored = await components.repository.get(clip.clip_id)
        assert isinstance(stored, ClipStateData)
        assert stored.status == ClipStatus.DONE
        stored_events = await components.repository.list_events(clip.clip_id)
        events = [event.event_type for event in stored_events]
        assert events[0] == EventType.CLIP_RECEIVED
        assert events[-1] == EventType.CLIP_DONE
        assert EventType.ALERT_DECIDED in events
        completed = {e.stage for e in stored_events if e.event_type == EventType.STAGE_COMPLETED}
        assert completed == set(StageName)


async def test_upload_failure_still_sends_the_alert_without_a_link(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a storage backend that is down
    async with build_pipeline(
        storage={"backend": "fake_failing_storage", "config": {}}, notifiers=[RECORDER]
    ) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed
        state = await components.pipeline.process(clip)

        # Then the alert goes out with upload_failed and no view_url; the upload was retried
        # and is still pending (retried in the background), so the clip is not done
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier)
        [alert] = notifier.alerts
        assert alert.upload_failed is True
        assert alert.view_url is None and alert.storage_uri is None
        upload = state.stages[StageName.UPLOAD]
        assert upload.status == StageStatus.PENDING
        assert upload.attempts >= 2
        assert "storage service unavailable" in (upload.last_error or "")
        assert state.status == ClipStatus.ANALYZED
        assert clip.local_path.exists()
        storage = components.storage
        assert isinstance(storage, FailingStorage) and storage.puts >= 2


async def test_exhausted_retries_raise_a_system_alert(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a storage backend that is down and a sink
    async with build_pipeline(
        storage={"backend": "fake_failing_storage", "config": {}}, notifiers=[RECORDER]
    ) as components:
        # When a clip is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the sink gets a system alert naming the stage
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier)
        [system_alert] = notifier.system_alerts
        assert system_alert.stage == StageName.UPLOAD
        assert system_alert.kind == "stage_retries_exhausted"


async def test_transient_filter_failure_is_retried_and_journaled(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a filter that fails once, then works
    async with build_pipeline(
        filter={"backend": "fake_filter", "config": {"fail_first": 1}}
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the filter stage is ok after two attempts and the retry is in the events
        log = state.stages[StageName.FILTER]
        assert (log.status, log.attempts) == (StageStatus.OK, 2)
        events = await components.repository.list_events(state.clip_id)
        assert [e.stage for e in events if e.event_type == EventType.STAGE_RETRY] == [
            StageName.FILTER
        ]


async def test_filter_error_stops_the_clip_but_not_the_upload(
    build_pipeline: BuildPipeline, tmp_path: Path
) -> None:
    # Given a corrupt clip (not a video)
    spool = tmp_path / "spool"
    spool.mkdir()
    corrupt = spool / "front_door_1700000300.mp4"
    corrupt.write_bytes(b"\x00garbage" * 100)
    async with build_pipeline(notifiers=[RECORDER]) as components:
        clip = clip_from(corrupt, tmp_path / "spool2")

        # When it is processed
        state = await components.pipeline.process(clip)

        # Then the filter error is recorded, no VLM or alert ran, and the clip was still uploaded
        assert state.stages[StageName.FILTER].status == StageStatus.ERROR
        assert "not a video file" in (state.stages[StageName.FILTER].last_error or "")
        assert state.stages[StageName.UPLOAD].status == StageStatus.OK
        assert state.stages[StageName.VLM].status == StageStatus.PENDING
        assert state.status == ClipStatus.ERROR
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier) and notifier.alerts == []


async def test_trigger_only_skips_the_vlm_without_a_trigger_class(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a filter that only sees a car, and the VLM in trigger_only mode for people
    async with build_pipeline(
        filter={"backend": "fake_filter", "config": {"classes": ["car"]}}, notifiers=[RECORDER]
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the VLM is skipped, no alert is sent (notify_on_motion off) and the clip is done
        analyzer = components.analyzer
        assert isinstance(analyzer, FakeVLM) and analyzer.calls == []
        assert state.stages[StageName.VLM].status == StageStatus.SKIPPED
        assert state.stages[StageName.NOTIFY].status == StageStatus.SKIPPED
        assert state.alert_decision is not None and state.alert_decision.notify is False
        assert state.status == ClipStatus.DONE


async def test_notify_on_motion_alerts_without_vlm(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given run_mode never and a camera override that alerts on motion
    async with build_pipeline(
        vlm={"run_mode": "never"},
        alert_policy={
            "backend": "default",
            "config": {"overrides": {"front_door": {"notify_on_motion": True}}},
        },
        notifiers=[RECORDER],
    ) as components:
        # When a clip is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the alert has no risk level (VLM skipped) and says why it was sent
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier)
        [alert] = notifier.alerts
        assert alert.risk_level is None and alert.summary is None
        assert alert.notify_reason == "notify_on_motion (per-camera)"


async def test_vlm_failure_still_reaches_the_alert_policy(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a VLM that times out and a policy that alerts on motion
    async with build_pipeline(
        vlm={"backend": "fake_vlm", "run_mode": "always", "config": {"fail": True}},
        alert_policy={"backend": "default", "config": {"notify_on_motion": True}},
        notifiers=[RECORDER],
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the VLM error is journaled and the alert is still sent
        assert state.stages[StageName.VLM].status == StageStatus.ERROR
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier) and len(notifier.alerts) == 1


async def test_a_failing_sink_does_not_block_the_others(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given two sinks, one of them unreachable
    async with build_pipeline(
        notifiers=[
            {"backend": "fake_recorder", "config": {"name": "broken", "fail": True}},
            {"backend": "fake_recorder", "config": {"name": "working"}},
        ]
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the working sink got the alert and the notify stage names the broken one
        broken, working = components.notifiers
        assert isinstance(working, RecordingNotifier) and len(working.alerts) == 1
        assert isinstance(broken, RecordingNotifier) and broken.attempts == 2
        notify = state.stages[StageName.NOTIFY]
        assert notify.status == StageStatus.ERROR
        assert "broken" in (notify.last_error or "")


async def test_resumed_clip_skips_stages_already_ok(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a clip whose upload and filter are already ok in the stored state
    async with build_pipeline(notifiers=[RECORDER]) as components:
        clip = clip_from(person_clip, tmp_path / "spool")
        first = await components.pipeline.process(clip)
        first.stages[StageName.VLM].status = StageStatus.PENDING
        first.stages[StageName.NOTIFY].status = StageStatus.PENDING
        await components.repository.save(first)
        object_filter = components.object_filter
        assert isinstance(object_filter, FakeFilter)
        calls_before = len(object_filter.calls)

        # When it is processed again (as recovery does)
        state = await components.pipeline.process(clip)

        # Then the filter is not called again, the upload is not repeated, the rest runs
        assert len(object_filter.calls) == calls_before
        assert state.stages[StageName.UPLOAD].attempts == 1
        assert state.stages[StageName.VLM].attempts == 2
        assert state.status == ClipStatus.DONE


async def test_concurrency_is_bounded_by_max_clips_in_flight(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a slow filter and at most two clips in flight
    async with build_pipeline(
        filter={"backend": "fake_filter", "config": {"delay_s": 0.2}},
        concurrency={"max_clips_in_flight": 2},
    ) as components:
        clips = [clip_from(person_clip, tmp_path / "spool", ts=1700000000 + i) for i in range(4)]

        # When four clips are submitted at once
        tasks = [components.pipeline.submit(clip) for clip in clips]
        await asyncio.sleep(0.1)
        started = [await components.repository.get(clip.clip_id) for clip in clips]
        await asyncio.gather(*[t for t in tasks if t is not None])

        # Then only two had started while the first ones ran, and all four finished
        assert sum(state is not None for state in started) == 2
        for clip in clips:
            state = await components.repository.get(clip.clip_id)
            assert state is not None and state.status == ClipStatus.DONE


async def test_submitting_a_clip_already_in_flight_is_ignored(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a clip being processed slowly
    async with build_pipeline(filter={"backend": "fake_filter", "config": {"delay_s": 0.2}}) as c:
        clip = clip_from(person_clip, tmp_path / "spool")
        first = c.pipeline.submit(clip)

        # When the same clip is submitted again
        second = c.pipeline.submit(clip)

        # Then the second submission is dropped
        assert first is not None and second is None
        await first


@pytest.mark.slow
async def test_drain_bounds_the_wait_and_leaves_unfinished_clips_for_recovery(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a clip stuck in a very slow detector
    async with build_pipeline(filter={"backend": "fake_filter", "config": {"delay_s": 30}}) as c:
        clip = clip_from(person_clip, tmp_path / "spool")
        task = c.pipeline.submit(clip)
        await asyncio.sleep(0.2)

        # When the pipeline is drained with a short bound
        started = asyncio.get_running_loop().time()
        await c.pipeline.drain(0.3)
        waited = asyncio.get_running_loop().time() - started

        # Then it returns in time, the clip is cancelled, and its stored state is not done
        assert waited < 2.0
        assert task is not None and task.cancelled()
        stored = await c.repository.get(clip.clip_id)
        assert stored is not None and stored.status != ClipStatus.DONE
        assert stored.stages[StageName.UPLOAD].status == StageStatus.OK
        assert clip.local_path.exists()


async def test_the_analysis_is_stored_next_to_the_clip(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a pipeline whose VLM analyzes the clip
    async with build_pipeline() as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then the analysis JSON sits next to the clip in storage, and the state points at it
    stored = tmp_path / "storage" / "front_door" / "front_door_1700000000.analysis.json"
    assert state.analysis_uri == stored.as_uri()
    assert json.loads(stored.read_text())["risk_level"] == "high"


async def test_a_finished_clip_is_one_readable_log_line(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a pipeline whose filter sees a person and whose VLM reports high risk
    caplog.set_level(logging.INFO, logger="homesec.pipeline.core")
    async with build_pipeline(notifiers=[RECORDER]) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed
        await components.pipeline.process(clip)

    # Then one INFO line says what was found and decided, tagged clip_done
    [record] = [r for r in caplog.records if getattr(r, "event_type", None) == EventType.CLIP_DONE]
    line = record.getMessage()
    assert line.startswith(f"Clip {clip.clip_id} done: detected person; risk high; alert sent")
    assert record.__dict__["camera_name"] == "front_door"


@pytest.mark.slow
async def test_a_vlm_that_retries_on_its_own_is_not_retried_again_by_the_stage(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    openai_server: OpenAIServer,
) -> None:
    # Given the openai analyzer (one HTTP retry of its own) against a server failing with
    # 500 forever, and three stage attempts
    openai_server.default_reply = ScriptedReply.error(500)
    vlm_config = {
        "base_url": openai_server.base_url,
        "model": "test-vlm",
        "max_retries": 1,
        "retry_backoff_s": 0.01,
        "preprocessing": {"max_frames": 2, "max_size": 64},
    }
    async with build_pipeline(
        vlm={"backend": "openai", "run_mode": "always", "config": vlm_config},
        retry={"max_attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.05},
        notifiers=[RECORDER],
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then the VLM stage was tried once (two requests: the plugin's own retry), the system
    # alert says so at once, and the clip went on to the alert policy
    assert len(openai_server.requests) == 2
    assert state.stage(StageName.VLM).attempts == 1
    assert state.stage(StageName.VLM).status == StageStatus.ERROR
    notifier = components.notifiers[0]
    assert isinstance(notifier, RecordingNotifier)
    [system_alert] = notifier.system_alerts
    assert system_alert.message.startswith("vlm gave up after 1 attempt(s)")
    assert state.alert_decision is not None
