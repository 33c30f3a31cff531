"""Alerts that matter: labelled scenarios on the shared media, with and without the rules.

Each scenario runs its clips through the real pipeline: the real detector (YOLOX-nano on the
shared footage), SQLite state, local storage, the fake VLM of tests/fakes (it answers high
risk, so every clip it sees alerts) and a recording notifier. For each scenario the expected
alerts are compared with the actual ones, and the VLM calls made are counted twice: with the
rules (zones, required zones, stationary objects) and with them switched off.

Scenarios (the front door footage has people on the right half; the backyard is empty):
- person in the required zone: right half required; alert.
- person outside the required zone: only a corner of sky required; no alert.
- empty lawn: nothing to see; no alert.
- parked, then still there: the same footage 20 min later, boxes unmoved; alert, then none.
- waiting at the door: the same footage 5 min later (not long enough to be an object); alerts.

Modes and known people (ignore_known) are not built yet: their scenarios come with them.

    uv run python -m bench.relevance
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from tests.fakes.plugins import FakeVLM, RecordingNotifier

from bench._support import MEDIA, MODELS
from homesec.app import build_components
from homesec.models.clip import Clip
from homesec.models.config import Config

RIGHT_HALF = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
SKY_CORNER = [[0.0, 0.0], [0.05, 0.0], [0.05, 0.05], [0.0, 0.05]]
T0 = 1_700_000_000


@dataclass(frozen=True)
class Scenario:
    name: str
    clips: list[tuple[str, int]]
    """(media file, start second) in order."""
    expected: list[bool]
    """An alert per clip."""
    required_zones: list[str]


SCENARIOS = [
    Scenario("person in the required zone", [("front_door", T0)], [True], ["right"]),
    Scenario("person outside the required zone", [("front_door", T0)], [False], ["sky"]),
    Scenario("empty lawn", [("backyard", T0)], [False], []),
    Scenario(
        "parked, then still there 20 min on",
        [("front_door", T0), ("front_door", T0 + 1200)],
        [True, False],
        [],
    ),
    Scenario(
        "waiting at the door 5 min on",
        [("front_door", T0), ("front_door", T0 + 300)],
        [True, True],
        [],
    ),
]
MEDIA_FILES = {"front_door": "front_door_1700000000.mp4", "backyard": "backyard_1700000100.mp4"}


def _config(work: Path, scenario: Scenario, rules: bool) -> Config:
    zones = {"right": RIGHT_HALF, "sky": SKY_CORNER}
    return Config.model_validate(
        {
            "cameras": [
                {
                    "name": "cam",
                    "source": {"backend": "local_folder", "config": {"watch_dir": str(work)}},
                    "zones": zones if rules else {},
                }
            ],
            "storage": {"backend": "local", "config": {"root": str(work / "storage")}},
            "state_store": {"dsn_env": "HOMESEC_BENCH_NO_DSN", "sqlite_path": str(work / "s.db")},
            "filter": {
                "backend": "yolo",
                "config": {"model": str(MODELS / "yolox_nano.onnx"), "classes": ["person"]},
            },
            "vlm": {"backend": "fake_vlm", "run_mode": "trigger_only"},
            "alert_policy": {
                "backend": "default",
                "config": {"required_zones": scenario.required_zones if rules else []},
            },
            "notifiers": [{"backend": "fake_recorder", "config": {}}],
            "stationary": {"enabled": rules},
            "server": {"enabled": False},
            "pipeline": {"work_dir": str(work / "work")},
        }
    )


async def _run(scenario: Scenario, rules: bool) -> tuple[list[bool], int]:
    """Each clip's alert, and the VLM calls made."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        components = build_components(_config(work, scenario, rules))
        await components.start()
        try:
            alerts = []
            for media, start in scenario.clips:
                path = work / f"cam_{start}.mp4"
                shutil.copyfile(MEDIA / MEDIA_FILES[media], path)
                started = datetime.fromtimestamp(start, UTC)
                clip = Clip(
                    clip_id=path.name,
                    camera_name="cam",
                    local_path=path,
                    start_ts=started,
                    end_ts=started,
                    duration_s=20.0,
                    source_backend="bench",
                )
                state = await components.pipeline.process(clip)
                decision = state.alert_decision
                alerts.append(decision is not None and decision.notify)
            recorder, analyzer = components.notifiers[0], components.analyzer
            assert isinstance(recorder, RecordingNotifier) and isinstance(analyzer, FakeVLM)
            assert len(recorder.alerts) == sum(alerts)
            return alerts, len(analyzer.calls)
        finally:
            await components.aclose()


def _yes_no(alerts: list[bool]) -> str:
    return " ".join("alert" if alert else "none" for alert in alerts)


async def main() -> None:
    rows: list[tuple[Any, ...]] = []
    missed = unwanted = avoided = 0
    for scenario in SCENARIOS:
        actual, calls = await _run(scenario, rules=True)
        _, calls_without = await _run(scenario, rules=False)
        missed += sum(e and not a for e, a in zip(scenario.expected, actual, strict=True))
        unwanted += sum(a and not e for e, a in zip(scenario.expected, actual, strict=True))
        avoided += calls_without - calls
        ok = "ok" if actual == scenario.expected else "WRONG"
        rows.append((scenario.name, _yes_no(scenario.expected), _yes_no(actual), ok, calls,
                     calls_without))  # fmt: skip
    header = ("scenario", "expected", "actual", "", "VLM calls", "without rules")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\nmissed alerts: {missed}, unwanted alerts: {unwanted}, VLM calls avoided: {avoided}")


if __name__ == "__main__":
    asyncio.run(main())
