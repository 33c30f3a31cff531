"""Per-sink routing, cooldown, per-sink journal and snapshots handed to the sinks."""

from __future__ import annotations

from pathlib import Path

import tests.fakes.plugins  # noqa: F401
from homesec.models.enums import StageName, StageStatus
from tests.fakes.builders import clip_from
from tests.fakes.plugins import RecordingNotifier
from tests.pipeline.conftest import BuildPipeline


def _sink(name: str, **route: object) -> dict[str, object]:
    return {"backend": "fake_recorder", "config": {"name": name}, **route}


def _recorders(components: object) -> dict[str, RecordingNotifier]:
    notifiers = components.notifiers  # type: ignore[attr-defined]
    assert all(isinstance(n, RecordingNotifier) for n in notifiers)
    return {n.name: n for n in notifiers}


async def test_sinks_get_only_the_alerts_routed_to_them(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a sink for every camera, one for the backyard only and one for high risk only
    async with build_pipeline(
        vlm={"backend": "fake_vlm", "run_mode": "always", "config": {"risk_level": "medium"}},
        notifiers=[
            _sink("all"),
            _sink("backyard_only", cameras=["backyard"]),
            _sink("high_only", min_risk_level="high"),
        ],
        cameras=[
            {"name": name, "source": {"backend": "local_folder", "config": {"watch_dir": "x"}}}
            for name in ("front_door", "backyard")
        ],
    ) as components:
        # When a medium-risk front door clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then only the catch-all sink got it; the others are journaled as skipped, with reasons
    sinks = _recorders(components)
    assert [len(sinks[name].alerts) for name in ("all", "backyard_only", "high_only")] == [1, 0, 0]
    assert state.notifications["all"].status == StageStatus.OK
    assert state.notifications["backyard_only"].last_error == "camera front_door not routed"
    assert state.notifications["high_only"].status == StageStatus.SKIPPED
    assert state.stages[StageName.NOTIFY].status == StageStatus.OK


async def test_cooldown_limits_alerts_per_camera(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a sink with a one-hour cooldown and one without
    async with build_pipeline(
        notifiers=[_sink("calm", cooldown_s=3600), _sink("chatty")],
    ) as components:
        # When three clips of the same camera alert in a row
        for ts in (1700000000, 1700000010, 1700000020):
            await components.pipeline.process(clip_from(person_clip, tmp_path / "spool", ts=ts))

    # Then the cooled-down sink got the first only, the other all three
    sinks = _recorders(components)
    assert len(sinks["calm"].alerts) == 1
    assert len(sinks["chatty"].alerts) == 3


async def test_recovery_does_not_resend_to_sinks_that_already_delivered(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a clip whose alert reached one sink but not the other
    async with build_pipeline(
        notifiers=[
            _sink("ok_sink"),
            {"backend": "fake_recorder", "config": {"name": "down", "fail": True}},
        ]
    ) as components:
        clip = clip_from(person_clip, tmp_path / "spool")
        first = await components.pipeline.process(clip)
        assert first.stages[StageName.NOTIFY].status == StageStatus.ERROR
        sinks = _recorders(components)
        sinks["down"].config.fail = False

        # When the clip is processed again (as recovery does)
        await components.pipeline.process(clip)

    # Then only the sink that had failed gets it now
    assert len(sinks["ok_sink"].alerts) == 1
    assert len(sinks["down"].alerts) == 1


async def test_the_snapshot_of_the_best_detection_reaches_the_sinks_and_storage(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a detector that reports a person with a box
    async with build_pipeline(
        filter={"backend": "fake_filter", "config": {"box": [800, 300, 1000, 800]}},
        notifiers=[_sink("sink")],
    ) as components:
        clip = clip_from(person_clip, tmp_path / "spool")

        # When the clip is processed
        state = await components.pipeline.process(clip)

    # Then a JPEG snapshot sits next to the clip, was handed to the sink, and is in storage
    snapshot = tmp_path / "spool" / "front_door_1700000000.snapshot.jpg"
    assert snapshot.read_bytes()[:3] == b"\xff\xd8\xff"
    assert _recorders(components)["sink"].snapshots == [snapshot]
    stored = tmp_path / "storage" / "front_door" / snapshot.name
    assert state.snapshot_uri == stored.as_uri() and stored.is_file()
