"""Alerts that matter: labelled scenarios on the shared media, with and without the rules.

Each scenario runs its clips through the real pipeline: the real detector (YOLOX-nano on the
shared footage), SQLite state, local storage, the fake VLM of tests/fakes (it answers high
risk, so every clip it sees alerts; in the known-people scenarios it says it recognised
Alice, and nobody else), and a recording notifier. For each scenario the expected alerts are
compared with the actual ones, and the VLM calls made are counted twice: with the rules
(zones, required zones, stationary objects, modes, ignore_known, the alert switch) and with
them switched off. Every clip is in the storage in every scenario, and every decision
records the mode it was made in (checked).

With the rules HomeSec has the modes home and away, set as a user would (`Modes.set_mode`;
away unless the scenario says home), and the alert policy's mode settings are those of a
household: at home, clips of known people only are ignored, and the backyard camera is off.

Scenarios (the front door footage has people walking on the right half past a parked car
and van; the backyard is empty; "parked" is the front door's top right corner for 10 s,
before anyone walks in: the car and the van only):
- person in the required zone: right half required; alert.
- person outside the required zone: only a corner of sky required; no alert.
- empty lawn: nothing to see; no alert.
- parked car, then still there 20 min on: alert, then none (stationary).
- walkers past the parked car 20 min on: the car is stationary, the people are not: alerts.
- waiting at the door 5 min on: the same footage 5 min later (not long enough); alerts.
- backyard camera off in mode home (a person walks by): no VLM, no alert, still uploaded.
- same camera in mode away: alert.
- only Alice, ignore_known at home (medium risk): no alert.
- only Alice at home, but high risk: alert (ignore_known never hides a high risk).
- only Alice, away (ignore_known off): alert.
- alerts switched off by hand (Modes.set_alerts, mode away): no alert, no VLM.

    uv run python -m bench.relevance
"""

from __future__ import annotations

import asyncio
import filecmp
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from tests.fakes.plugins import FakeVLM, RecordingNotifier

from bench._support import MEDIA, MODELS
from homesec.app import build_components
from homesec.interfaces import StorageBackend
from homesec.models.clip import Clip
from homesec.models.config import Config
from homesec.models.enums import ModeSetter
from homesec.models.modes import ModeRefused
from homesec.models.state import ClipStateData

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
    required_zones: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=lambda: ["person"])
    camera: str = "cam"
    mode: str = "away"
    """The mode HomeSec is set to, with the rules."""
    vlm: dict[str, Any] = field(default_factory=dict)
    """The fake VLM's answer, changed."""
    switched_off: bool = False


ALICE_ONLY = {"risk_level": "medium", "known_entities": ["Alice"], "only_known": True}
ALICE_ONLY_HIGH = {**ALICE_ONLY, "risk_level": "high"}
VEHICLES = ["person", "car", "truck"]
SCENARIOS = [
    Scenario("person in the required zone", [("front_door", T0)], [True], ["right"]),
    Scenario("person outside the required zone", [("front_door", T0)], [False], ["sky"]),
    Scenario("empty lawn", [("backyard", T0)], [False]),
    Scenario(
        "parked car, then still there 20 min on",
        [("parked", T0), ("parked", T0 + 1200)],
        [True, False],
        classes=VEHICLES,
    ),
    Scenario(
        "walkers past the parked car 20 min on",
        [("front_door", T0), ("front_door", T0 + 1200)],
        [True, True],
        classes=VEHICLES,
    ),
    Scenario(
        "waiting at the door 5 min on",
        [("front_door", T0), ("front_door", T0 + 300)],
        [True, True],
    ),
    Scenario(
        "backyard camera off in mode home",
        [("front_door", T0)],
        [False],
        camera="backyard",
        mode="home",
    ),
    Scenario("same camera in mode away", [("front_door", T0)], [True], camera="backyard"),
    Scenario(
        "only Alice, ignore_known at home",
        [("front_door", T0)],
        [False],
        mode="home",
        vlm=ALICE_ONLY,
    ),
    Scenario(
        "only Alice at home, high risk",
        [("front_door", T0)],
        [True],
        mode="home",
        vlm=ALICE_ONLY_HIGH,
    ),
    Scenario("only Alice, away", [("front_door", T0)], [True], vlm=ALICE_ONLY),
    Scenario("alerts switched off by hand", [("front_door", T0)], [False], switched_off=True),
]
MEDIA_FILES = {"front_door": "front_door_1700000000.mp4", "backyard": "backyard_1700000100.mp4"}
MODES = ["home", "away"]
# The alert policy's mode settings: at home, known people only are no news and the backyard
# (where the family is) is off; away, the policy's own settings hold.
POLICY_MODES = {"home": {"ignore_known": True, "overrides": {"backyard": {"enabled": False}}}}


def _config(work: Path, scenario: Scenario, rules: bool) -> Config:
    zones = {"right": RIGHT_HALF, "sky": SKY_CORNER}
    policy: dict[str, Any] = {"required_zones": scenario.required_zones if rules else []}
    if rules:
        policy["modes"] = POLICY_MODES
    return Config.model_validate(
        {
            # The household's cameras: the policy's mode settings name the backyard.
            "cameras": [
                {
                    "name": name,
                    "source": {
                        "backend": "local_folder",
                        "config": {"watch_dir": str(work / "in" / name)},
                    },
                    "zones": zones if rules else {},
                }
                for name in dict.fromkeys([scenario.camera, "backyard"])
            ],
            "storage": {"backend": "local", "config": {"root": str(work / "storage")}},
            "state_store": {"dsn_env": "HOMESEC_BENCH_NO_DSN", "sqlite_path": str(work / "s.db")},
            "filter": {
                "backend": "yolo",
                "config": {"model": str(MODELS / "yolox_nano.onnx"), "classes": scenario.classes},
            },
            "vlm": {
                "backend": "fake_vlm",
                "run_mode": "trigger_only",
                "trigger_classes": scenario.classes,
                "config": scenario.vlm,
            },
            "alert_policy": {"backend": "default", "config": policy},
            "notifiers": [{"backend": "fake_recorder", "config": {}}],
            "stationary": {"enabled": rules},
            "modes": {"names": MODES if rules else []},
            "server": {"enabled": False},
            "pipeline": {"work_dir": str(work / "work")},
        }
    )


async def _run(scenario: Scenario, rules: bool, parked: Path) -> tuple[list[bool], int]:
    """Each clip's alert, and the VLM calls made."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        components = build_components(_config(work, scenario, rules))
        await components.start()
        try:
            modes = components.modes
            assert (modes is not None) == rules
            if modes is not None:
                changes = [await modes.set_mode(scenario.mode, ModeSetter.UI)]
                if scenario.switched_off:
                    changes.append(await modes.set_alerts(scenario.camera, False, ModeSetter.UI))
                assert not any(isinstance(change, ModeRefused) for change in changes), changes
            alerts = []
            for media, start in scenario.clips:
                path = work / f"{scenario.camera}_{start}.mp4"
                source = parked if media == "parked" else MEDIA / MEDIA_FILES[media]
                shutil.copyfile(source, path)
                started = datetime.fromtimestamp(start, UTC)
                clip = Clip(
                    clip_id=path.name,
                    camera_name=scenario.camera,
                    local_path=path,
                    start_ts=started,
                    end_ts=started,
                    duration_s=20.0,
                    source_backend="bench",
                )
                state = await components.pipeline.process(clip)
                await _check_stored(components.storage, state, source, work)
                decision = state.alert_decision
                assert decision is not None, f"{scenario.name}: {clip.clip_id} has no decision"
                assert decision.mode == (scenario.mode if rules else None), decision
                alerts.append(decision.notify)
            recorder, analyzer = components.notifiers[0], components.analyzer
            assert isinstance(recorder, RecordingNotifier) and isinstance(analyzer, FakeVLM)
            assert len(recorder.alerts) == sum(alerts)
            return alerts, len(analyzer.calls)
        finally:
            await components.aclose()


async def _check_stored(
    storage: StorageBackend, state: ClipStateData, source: Path, folder: Path
) -> None:
    """The clip's video is in the storage, byte for byte."""
    assert state.is_uploaded and state.storage_uri is not None, f"{state.clip_id} not uploaded"
    fetched = folder / f"stored_{state.clip_id}"
    await storage.get(state.storage_uri, fetched)
    same = await asyncio.to_thread(filecmp.cmp, fetched, source, shallow=False)
    assert same, f"{state.clip_id}: the stored video differs"


def _yes_no(alerts: list[bool]) -> str:
    return " ".join("alert" if alert else "none" for alert in alerts)


def _parked_footage(folder: Path) -> Path:
    """The front door's top right corner for its first 10 s: the parked car and van only."""
    path = folder / "parked.mp4"
    crop = ["-t", "10", "-vf", "crop=480:300:1440:0", "-c:v", "libx264", "-r", "15"]
    source = str(MEDIA / MEDIA_FILES["front_door"])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", source, *crop, str(path)], check=True)
    return path


async def main() -> None:
    rows: list[tuple[Any, ...]] = []
    missed = unwanted = avoided = 0
    with tempfile.TemporaryDirectory() as tmp:
        parked = _parked_footage(Path(tmp))
        results = [
            (s, await _run(s, True, parked), await _run(s, False, parked)) for s in SCENARIOS
        ]
    for scenario, (actual, calls), (without, calls_without) in results:
        missed += sum(e and not a for e, a in zip(scenario.expected, actual, strict=True))
        unwanted += sum(a and not e for e, a in zip(scenario.expected, actual, strict=True))
        avoided += calls_without - calls
        ok = "ok" if actual == scenario.expected else "WRONG"
        rows.append((scenario.name, _yes_no(scenario.expected), _yes_no(actual), ok,
                     _yes_no(without), calls, calls_without))  # fmt: skip
    header = ("scenario", "expected", "actual", "", "without rules", "VLM calls", "without")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    unwanted_without = sum(
        a and not e
        for scenario, _, (without, _) in results
        for e, a in zip(scenario.expected, without, strict=True)
    )
    print(f"\nmissed alerts: {missed}, unwanted alerts: {unwanted}, VLM calls avoided: {avoided}")
    print(f"unwanted alerts without the rules: {unwanted_without}")


if __name__ == "__main__":
    asyncio.run(main())
