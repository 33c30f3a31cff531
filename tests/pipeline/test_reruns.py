"""Clips that are not done after their round are processed again in the background; what was
already sent (an alert, a system alert, `clip_done`) is never sent again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from homesec.app import Components
from homesec.models.enums import ClipStatus, EventType, StageName, StageStatus
from homesec.models.state import ClipStateData
from tests.fakes.builders import clip_from, switchable_storage
from tests.fakes.plugins import FakeVLM, RecordingNotifier
from tests.pipeline.conftest import BuildPipeline
from tests.services.postgres import ThrowawayPostgres

RECORDER = {"backend": "fake_recorder", "config": {}}
FAST_RERUNS = {
    "max_attempts": 2,
    "backoff_s": 0.01,
    "max_backoff_s": 0.02,
    "rerun_initial_s": 0.05,
    "rerun_max_backoff_s": 0.1,
}


def _vlm_down_while(flag: Path) -> dict[str, Any]:
    return {"backend": "fake_vlm", "run_mode": "trigger_only", "config": {"fail_while": str(flag)}}


def _recorder(components: Components) -> RecordingNotifier:
    notifier = components.notifiers[0]
    assert isinstance(notifier, RecordingNotifier)
    return notifier


async def _until(condition: Callable[[], Any], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.05)


async def _stored(components: Components, clip_id: str) -> ClipStateData:
    state = await components.repository.get(clip_id)
    assert state is not None
    return state


async def test_a_clip_in_error_is_processed_again_until_the_vlm_answers(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a VLM that is down, and fast background rounds
    down = tmp_path / "vlm-down"
    down.touch()
    async with build_pipeline(
        vlm=_vlm_down_while(down), retry=FAST_RERUNS, notifiers=[RECORDER]
    ) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When a clip is handed on, ends in error, and the VLM comes back afterwards
        task = components.pipeline.submit(clip)
        assert task is not None
        first = await task
        assert first is not None and first.status == ClipStatus.ERROR
        down.unlink()

        # Then a background round completes the analysis without a restart
        async def analysed() -> bool:
            state = await _stored(components, clip.clip_id)
            return state.status == ClipStatus.DONE

        await _until(analysed)
        state = await _stored(components, clip.clip_id)
        assert state.analysis_result is not None
        # And the person was alerted once, while the VLM was down (not again afterwards)
        [alert] = _recorder(components).alerts
        assert "analysis unavailable" in alert.notify_reason


@pytest.mark.slow
async def test_background_rounds_of_a_clip_in_error_are_bounded(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a VLM that never answers and two background rounds at most
    down = tmp_path / "vlm-down"
    down.touch()
    async with build_pipeline(
        vlm=_vlm_down_while(down),
        retry={**FAST_RERUNS, "rerun_max_rounds": 2},
        notifiers=[RECORDER],
    ) as components:
        # When a clip is handed on and the rounds have had time to run
        task = components.pipeline.submit(clip_from(person_clip, tmp_path / "spool"))
        assert task is not None
        await task
        vlm = components.analyzer
        assert isinstance(vlm, FakeVLM)

        async def three_rounds() -> bool:
            return len(vlm.calls) >= 6

        await _until(three_rounds)
        await asyncio.sleep(0.5)

        # Then the VLM was tried in the first round and two more, no further; one system alert
        assert len(vlm.calls) == 6
        assert len(_recorder(components).system_alerts) == 1


async def test_nothing_is_alerted_again_after_a_restart(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a VLM that stays down across a restart
    down = tmp_path / "vlm-down"
    down.touch()
    clip = clip_from(person_clip, tmp_path / "spool")
    sent: list[RecordingNotifier] = []
    for _ in range(2):
        async with build_pipeline(vlm=_vlm_down_while(down), notifiers=[RECORDER]) as components:
            # When the clip is processed, then processed again after the restart (recovery)
            await components.pipeline.process(clip)
            sent.append(_recorder(components))

    # Then the person alert and the VLM's system alert went out once, in the first run
    assert [len(r.alerts) for r in sent] == [1, 0]
    assert [len(r.system_alerts) for r in sent] == [1, 0]


async def test_clip_done_is_recorded_once_when_the_upload_succeeds_later(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given storage that is down when the clip arrives
    down = tmp_path / "storage-down"
    down.touch()
    storage = switchable_storage(tmp_path, down)
    async with build_pipeline(storage=storage, retry=FAST_RERUNS) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip's first round ends without the upload, and storage comes back
        task = components.pipeline.submit(clip)
        assert task is not None
        first = await task
        assert first is not None and first.upload_failed
        down.unlink()

        async def done() -> bool:
            return (await _stored(components, clip.clip_id)).status == ClipStatus.DONE

        await _until(done)
        await components.pipeline.drain(5)

        # Then the lifecycle says clip_done exactly once, and the upload failure is over
        events = await components.repository.list_events(clip.clip_id)
        assert [e.event_type for e in events].count(EventType.CLIP_DONE) == 1
        assert not (await _stored(components, clip.clip_id)).upload_failed


async def test_a_failed_upload_is_reported_as_failed(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given storage that is down
    async with build_pipeline(
        storage={"backend": "fake_failing_storage", "config": {}}, notifiers=[RECORDER]
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then its state says the upload failed (it stays pending: retried in the background)
    assert state.stage(StageName.UPLOAD).status == StageStatus.PENDING
    assert state.upload_failed
    assert not state.is_uploaded


async def test_the_log_says_when_no_sink_took_the_alert(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a policy that alerts on medium risk and the only sink taking high risk only
    caplog.set_level(logging.INFO, logger="homesec.pipeline.core")
    async with build_pipeline(
        vlm={"backend": "fake_vlm", "config": {"risk_level": "medium"}},
        notifiers=[{**RECORDER, "min_risk_level": "high"}],
    ) as components:
        # When a clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
        assert _recorder(components).alerts == []

    # Then the clip's line does not claim an alert was sent
    [record] = [r for r in caplog.records if getattr(r, "event_type", None) == EventType.CLIP_DONE]
    assert "alert sent" not in record.getMessage()
    assert "no sink took it" in record.getMessage()
    assert state.alerted_sinks == []


@pytest.mark.slow
async def test_stages_in_error_are_tried_again_once_storage_and_the_vlm_are_back(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given storage and the VLM down together, two error rounds allowed
    down = tmp_path / "down"
    down.touch()
    async with build_pipeline(
        storage=switchable_storage(tmp_path, down),
        vlm=_vlm_down_while(down),
        retry={
            "max_attempts": 1,
            "backoff_s": 0.05,
            "upload_retry_max_backoff_s": 0.1,
            "rerun_max_rounds": 2,
            "rerun_initial_s": 0.2,
            "rerun_max_backoff_s": 0.2,
        },
    ) as components:
        clip = clip_from(person_clip, tmp_path / "spool")
        task = components.pipeline.submit(clip)
        assert task is not None
        await task

        # When the outage outlasts the error rounds (many upload rounds), then both are back
        await asyncio.sleep(1.5)
        down.unlink()

        # Then the round after the upload worked tries the VLM again, and the clip is done
        async def done() -> bool:
            return (await _stored(components, clip.clip_id)).status == ClipStatus.DONE

        await _until(done)


@pytest.mark.slow
async def test_a_person_is_alerted_once_while_the_database_and_storage_are_down(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the database and storage both down, and fast background rounds
    monkeypatch.setenv("HOMESEC_TEST_DEAD_DSN", "postgresql://homesec@127.0.0.1:9/none")
    async with build_pipeline(
        state_store={"dsn_env": "HOMESEC_TEST_DEAD_DSN", "write_timeout_s": 0.5},
        storage={"backend": "fake_failing_storage", "config": {}},
        notifiers=[RECORDER],
        retry={"max_attempts": 1, "backoff_s": 0.05, "upload_retry_max_backoff_s": 0.1},
    ) as components:
        # When the clip is handed on and background rounds run for a while
        task = components.pipeline.submit(clip_from(person_clip, tmp_path / "spool"))
        assert task is not None
        await task
        await asyncio.sleep(2)

        # Then each round went on from the clip's unsaved state: one alert, one system alert
        recorder = _recorder(components)
        assert len(recorder.alerts) == 1
        assert len(recorder.system_alerts) == 1


@pytest.mark.slow
async def test_clip_done_is_logged_once_over_its_rounds(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given storage down when the clip arrives
    caplog.set_level(logging.INFO, logger="homesec.pipeline.core")
    down = tmp_path / "storage-down"
    down.touch()
    storage = switchable_storage(tmp_path, down)
    retry = {"max_attempts": 1, "backoff_s": 0.05, "upload_retry_max_backoff_s": 0.1}
    async with build_pipeline(storage=storage, retry=retry) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When several rounds run before storage is back and the clip is done
        task = components.pipeline.submit(clip)
        assert task is not None
        await task
        await asyncio.sleep(0.6)
        down.unlink()

        async def done() -> bool:
            return (await _stored(components, clip.clip_id)).status == ClipStatus.DONE

        await _until(done)
        await components.pipeline.drain(5)

    # Then one log line says the clip is done
    lines = [r for r in caplog.records if getattr(r, "event_type", None) == EventType.CLIP_DONE]
    assert len(lines) == 1


@pytest.mark.slow
async def test_a_system_alert_no_sink_took_is_sent_again_in_a_later_round(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a VLM that is down and the only sink failing for a while
    vlm_down = tmp_path / "vlm-down"
    vlm_down.touch()
    sink_down = tmp_path / "sink-down"
    sink_down.touch()
    sink = {"backend": "fake_recorder", "config": {"fail_while": str(sink_down)}}
    async with build_pipeline(
        vlm=_vlm_down_while(vlm_down), retry=FAST_RERUNS, notifiers=[sink]
    ) as components:
        task = components.pipeline.submit(clip_from(person_clip, tmp_path / "spool"))
        assert task is not None
        await task
        recorder = _recorder(components)
        assert recorder.system_alerts == []

        # When the sink is back while the VLM stays down
        sink_down.unlink()

        async def told() -> bool:
            return len(recorder.system_alerts) >= 1

        await _until(told)
        await asyncio.sleep(0.5)

        # Then the VLM's system alert reached it, once
        assert [a.stage for a in recorder.system_alerts] == [StageName.VLM]


async def test_a_round_while_the_database_is_down_goes_on_from_the_clips_state(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    # Given a clip that ended in error (VLM down), is in storage, and whose local copy was
    # pruned; then the database goes down
    monkeypatch.setenv("HOMESEC_TEST_RERUN_DSN", throwaway_postgres.dsn)
    down = tmp_path / "vlm-down"
    down.touch()
    async with build_pipeline(
        state_store={"dsn_env": "HOMESEC_TEST_RERUN_DSN", "write_timeout_s": 1.0},
        vlm=_vlm_down_while(down),
        retry={**FAST_RERUNS, "rerun_initial_s": 1.0},
        notifiers=[RECORDER],
    ) as components:
        clip = clip_from(person_clip, tmp_path / "spool")
        task = components.pipeline.submit(clip)
        assert task is not None
        first = await task
        assert first is not None and first.status == ClipStatus.ERROR and first.is_uploaded
        clip.local_path.unlink()
        throwaway_postgres.stop()

        # When the VLM is back and the clip's next round runs while the database is down,
        # and then the database comes back
        down.unlink()
        vlm = components.analyzer
        assert isinstance(vlm, FakeVLM)
        calls = len(vlm.calls)

        async def analysed() -> bool:
            return len(vlm.calls) > calls

        await _until(analysed)
        await components.pipeline.drain(10)
        throwaway_postgres.start()
        assert await components.repository.ping()
        await components.repository.unsaved_states.wait()

        # Then the round went on from the clip's state (downloaded from storage): it is done,
        # and the database holds that, never a blank state of it
        stored = await _stored(components, clip.clip_id)
        assert stored.status == ClipStatus.DONE
        assert stored.storage_uri == first.storage_uri
        assert len(_recorder(components).alerts) == 1
