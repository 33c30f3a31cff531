"""The daily VLM budget: once the day's calls (or cost) are spent, a system alert says so and
clips alert on their detection alone, saying why, until the day turns; a restart keeps the
day's tally."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from homesec.models.alert import SystemAlert
from homesec.models.config import VLMBudget
from homesec.models.enums import StageName, StageStatus, SystemAlertKind
from homesec.models.results import VLMUsage
from homesec.repository.clip_repository import ClipRepository
from homesec.vlm_budget import DailyBudget
from tests.fakes.builders import clip_from
from tests.fakes.plugins import FakeVLM, RecordingNotifier
from tests.pipeline.conftest import BuildPipeline
from tests.repository.builders import state_store_config

T0 = 1_700_000_000


def _sections(**budget: Any) -> dict[str, Any]:
    return {
        "vlm": {"backend": "fake_vlm", "run_mode": "trigger_only", "budget": budget},
        "notifiers": [{"backend": "fake_recorder", "config": {}}],
    }


async def test_past_the_days_calls_clips_alert_on_detection_alone_saying_so(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a budget of two VLM calls a day
    async with build_pipeline(**_sections(max_calls_per_day=2)) as components:
        # When three clips of a person come
        states = [
            await components.pipeline.process(clip_from(person_clip, tmp_path / "spool", ts=ts))
            for ts in (T0, T0 + 60, T0 + 120)
        ]

    # Then two are analysed, the third alerts on its detection, saying the budget is spent,
    # and one system alert said the budget was reached
    assert isinstance(components.analyzer, FakeVLM) and len(components.analyzer.calls) == 2
    third = states[2]
    assert third.stage(StageName.VLM).status == StageStatus.SKIPPED
    assert third.alert_decision is not None and third.alert_decision.notify
    assert "daily VLM budget reached: 2 calls" in third.alert_decision.notify_reason
    recorder = components.notifiers[0]
    assert isinstance(recorder, RecordingNotifier)
    assert [a.kind for a in recorder.system_alerts] == [SystemAlertKind.VLM_BUDGET_REACHED]


async def test_a_restart_keeps_the_days_tally(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a budget of one call a day, spent before a restart
    async with build_pipeline(**_sections(max_calls_per_day=1)) as components:
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool", ts=T0))

    # When HomeSec starts again and a clip comes
    async with build_pipeline(**_sections(max_calls_per_day=1)) as components:
        state = await components.pipeline.process(
            clip_from(person_clip, tmp_path / "spool", ts=T0 + 60)
        )

    # Then the VLM is not asked again today
    assert isinstance(components.analyzer, FakeVLM) and components.analyzer.calls == []
    assert state.alert_decision is not None and "budget" in state.alert_decision.notify_reason


async def test_the_cost_limit_holds_until_the_day_turns(tmp_path: Path) -> None:
    # Given a budget of $1 a day in Berlin, a clock at 23:00 there, and alerts recorded
    clock = Clock(datetime(2026, 12, 7, 23, 0, tzinfo=ZoneInfo("Europe/Berlin")))
    alerts: list[SystemAlert] = []

    async def record(alert: SystemAlert) -> bool:
        alerts.append(alert)
        return True

    repository = ClipRepository.from_config(state_store_config(tmp_path))
    await repository.start()
    config = VLMBudget(max_cost_usd_per_day=1.0, timezone="Europe/Berlin")
    budget = DailyBudget(config, repository, record, clock=clock)
    await budget.start()

    # When two calls cost $0.60 each, then the clock passes midnight
    usage = VLMUsage(estimated_cost_usd=0.6)
    await budget.spent(usage)
    before = budget.exhausted()
    await budget.spent(usage)
    spent = budget.exhausted()
    clock.now = clock.now + timedelta(hours=1, minutes=1)
    next_day = budget.exhausted()
    await repository.aclose()

    # Then the limit is reached after the second, said once, and lifted the next day
    assert before is None
    assert spent == "daily VLM budget reached: $1.20"
    assert [alert.kind for alert in alerts] == [SystemAlertKind.VLM_BUDGET_REACHED]
    assert next_day is None


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
