"""Retention: prune oldest uploaded+done local clips above the cap, nothing else."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import tests.fakes.plugins  # noqa: F401
from homesec.app import Components
from homesec.health import HealthMonitor
from homesec.models.clip import Clip
from homesec.models.config import RetentionConfig
from homesec.models.enums import ClipStatus, HealthStatus, StageName, StageStatus
from homesec.pipeline.naming import ClipNames
from homesec.pipeline.retention import RetentionPruner
from homesec.plugins.registry import load_source
from tests.fakes.builders import switchable_storage
from tests.fakes.plugins import RecordingNotifier
from tests.pipeline.conftest import BuildPipeline

RECORDER = {"backend": "fake_recorder", "config": {}}


async def _spool(directory: Path, media: Path, names: list[str]) -> tuple[object, list[Clip]]:
    directory.mkdir()
    for name in names:
        shutil.copyfile(media, directory / name)
    source = load_source(
        "local_folder",
        {
            "camera_name": "front_door",
            "watch_dir": str(directory),
            "poll_interval_s": 0.05,
            "settle_s": 0,
        },
    )
    clips: list[Clip] = []
    source.register_callback(clips.append)
    source.use_namer(ClipNames())
    await source.start()
    while len(clips) < len(names):
        await asyncio.sleep(0.05)
    await source.aclose()
    return source, sorted(clips, key=lambda clip: clip.clip_id)


def _pruner(
    cap: int | None,
    source: object,
    components: Components,
    min_free: int = 0,
    sweep_interval_s: float = 60.0,
) -> RetentionPruner:
    """A pruner with the cap (and no free-space floor, unless given) over one source's spool."""
    return RetentionPruner(
        RetentionConfig(
            max_local_size_bytes=cap, min_free_bytes=min_free, sweep_interval_s=sweep_interval_s
        ),
        [source],  # type: ignore[list-item]
        components.repository,
        busy=components.pipeline.busy,
        system_alert=components.pipeline.system_alert,
        work_dir=Path(),
    )


async def test_oldest_done_clips_are_pruned_until_under_the_cap(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given four clips handed on by a source: three done, the newest one unfinished
    names = [f"front_door_{1700000000 + i}.mp4" for i in range(4)]
    source, clips = await _spool(tmp_path / "spool", person_clip, names)
    async with build_pipeline() as components:
        for clip in clips:
            await components.pipeline.process(clip)
        unfinished = await components.repository.get(names[0])
        assert unfinished is not None
        unfinished.stages[StageName.NOTIFY].status = StageStatus.PENDING
        await components.repository.save(unfinished)

        # When retention runs with room for two clips
        size = person_clip.stat().st_size
        pruner = _pruner(2 * size + 10, source, components)
        pruned = await pruner.prune("clip_arrived")

        # Then the two oldest done clips went; the unfinished one and the newest stay
        assert pruned == names[1:3]
        assert sorted(p.name for p in (tmp_path / "spool").glob("*.mp4")) == [names[0], names[3]]
        # And storage and state are untouched
        assert len(list((tmp_path / "storage" / "front_door").glob("*.mp4"))) == 4
        assert await components.repository.get(names[1]) is not None


async def test_nothing_is_pruned_when_the_database_cannot_say_what_is_done(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given processed clips over the cap, and a repository whose database is unreachable
    monkeypatch.setenv("HOMESEC_TEST_DEAD_DSN", "postgresql://homesec@127.0.0.1:9/none")
    names = [f"front_door_{1700000000 + i}.mp4" for i in range(2)]
    source, clips = await _spool(tmp_path / "spool", person_clip, names)
    async with build_pipeline(state_store={"dsn_env": "HOMESEC_TEST_DEAD_DSN"}) as components:
        for clip in clips:
            await components.pipeline.process(clip)

        # When retention runs with no room at all
        pruner = _pruner(0, source, components)
        pruned = await pruner.prune("clip_arrived")

        # Then nothing is deleted: eligibility is unknown
        assert pruned == []
        assert len(list((tmp_path / "spool").glob("*.mp4"))) == 2


async def test_a_trigger_during_a_pass_is_dropped(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a pruner over an empty spool
    source, _ = await _spool(tmp_path / "spool", person_clip, [])
    async with build_pipeline() as components:
        pruner = _pruner(0, source, components)

        # When it is triggered twice in a row, then again after the pass
        first = pruner.trigger("clip_arrived")
        second = pruner.trigger("clip_arrived")
        await pruner.wait()
        third = pruner.trigger("clip_arrived")
        await pruner.wait()

        # Then the trigger during the pass was dropped
        assert (first, second, third) == (True, False, True)


async def test_the_periodic_sweep_prunes_without_a_new_clip(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given two done clips over a cap that fits one, and no clip arriving any more
    names = [f"front_door_{1700000000 + i}.mp4" for i in range(2)]
    source, clips = await _spool(tmp_path / "spool", person_clip, names)
    async with build_pipeline() as components:
        for clip in clips:
            await components.pipeline.process(clip)
        size = person_clip.stat().st_size
        pruner = _pruner(size + 10, source, components, sweep_interval_s=0.05)

        # When the periodic sweep runs for a while
        await pruner.start()
        try:
            async with asyncio.timeout(10):
                while len(list((tmp_path / "spool").glob("*.mp4"))) > 1:
                    await asyncio.sleep(0.05)
        finally:
            await pruner.aclose()

    # Then the older clip was pruned and the newer one kept
    assert [p.name for p in (tmp_path / "spool").glob("*.mp4")] == [names[1]]


async def test_uploaded_clips_that_ended_in_error_are_pruned(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given three uploaded clips that ended in error (the VLM is down), over a cap of one clip
    names = [f"front_door_{1700000000 + i}.mp4" for i in range(3)]
    source, clips = await _spool(tmp_path / "spool", person_clip, names)
    vlm = {"backend": "fake_vlm", "config": {"fail": True}}
    async with build_pipeline(vlm=vlm) as components:
        for clip in clips:
            state = await components.pipeline.process(clip)
            assert state.status == ClipStatus.ERROR and state.is_uploaded

        # When retention runs
        size = person_clip.stat().st_size
        pruned = await _pruner(size + 10, source, components).prune("clip_arrived")

    # Then the two oldest went (recovery can download them again); storage keeps all three
    assert pruned == names[:2]
    assert len(list((tmp_path / "storage" / "front_door").glob("*.mp4"))) == 3


async def test_clips_not_in_storage_are_kept_and_the_overflow_is_reported_once(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given two clips whose upload failed (storage down), over a cap of zero
    names = [f"front_door_{1700000000 + i}.mp4" for i in range(2)]
    source, clips = await _spool(tmp_path / "spool", person_clip, names)
    down = tmp_path / "storage-down"
    down.touch()
    storage = switchable_storage(tmp_path, down)
    async with build_pipeline(storage=storage, notifiers=[RECORDER]) as components:
        for clip in clips:
            await components.pipeline.process(clip)
        pruner = _pruner(0, source, components)

        # When retention runs twice
        first = await pruner.prune("clip_arrived")
        second = await pruner.prune("periodic")
        notifier = components.notifiers[0]
        assert isinstance(notifier, RecordingNotifier)

        # Then nothing is deleted, and a person is told once why the spool is over its cap
        assert first == second == []
        assert len(list((tmp_path / "spool").glob("*.mp4"))) == 2
        assert pruner.problem is not None and "over the 0 cap" in pruner.problem
        [report] = [a for a in notifier.system_alerts if a.kind == "spool_over_limit"]
        assert "only clips already in storage may go" in report.message
        assert REGISTRY.get_sample_value("homesec_spool_over_limit") == 1.0
        # And the health says so (storage answering again, so nothing else is wrong)
        down.unlink()
        monitor = HealthMonitor(
            components.pipeline,
            components.repository,
            components.storage,
            [],
            components.notifiers,
            pruner,
        )
        health = await monitor.report()
        assert health.status == HealthStatus.DEGRADED
        [spool] = [c for c in health.components if c.name == "spool"]
        assert not spool.ok and "over the 0 cap" in (spool.detail or "")


async def test_a_disk_short_of_free_space_is_pruned_below_the_cap(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given two done clips, no size cap, and a free-space floor larger than any disk
    names = [f"front_door_{1700000000 + i}.mp4" for i in range(2)]
    source, clips = await _spool(tmp_path / "spool", person_clip, names)
    async with build_pipeline() as components:
        for clip in clips:
            await components.pipeline.process(clip)

        # When retention runs
        pruner = _pruner(None, source, components, min_free=10**18)
        pruned = await pruner.prune("periodic")

    # Then every clip that is safe in storage made room, and the shortage is still reported
    assert pruned == names
    assert pruner.problem is not None and "free on the spool's disk" in pruner.problem
