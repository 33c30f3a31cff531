"""Core models: risk levels as ordered strings, derived status, the clip_id rule."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from homesec.models.clip import clip_id_for, free_clip_path, parse_clip_id
from homesec.models.enums import ClipStatus, RiskLevel, StageName, StageStatus
from homesec.models.state import ClipStateData, StageLog, derive_status


class _Holder(BaseModel):
    level: RiskLevel


def test_risk_level_orders_and_reads_and_writes_as_a_string() -> None:
    # Given risk levels from text
    # When compared and serialized
    holder = _Holder.model_validate({"level": "HIGH"})

    # Then they compare as numbers and serialize as lowercase names
    assert RiskLevel.from_string("medium") >= RiskLevel.LOW
    assert holder.model_dump(mode="json") == {"level": "high"}
    assert holder.model_dump_json() == '{"level":"high"}'
    assert _Holder.model_json_schema()["properties"]["level"]["enum"] == ["low", "medium", "high"]


@pytest.mark.parametrize("value", ["critical", 2, None])
def test_risk_level_rejects_anything_else(value: object) -> None:
    # Given a value that is not a risk level
    # When validated
    # Then it is refused
    with pytest.raises(ValidationError):
        _Holder.model_validate({"level": value})


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ({}, ClipStatus.QUEUED_LOCAL),
        ({StageName.UPLOAD: StageStatus.OK}, ClipStatus.UPLOADED),
        ({StageName.UPLOAD: StageStatus.OK, StageName.FILTER: StageStatus.OK}, ClipStatus.FILTERED),
        ({StageName.FILTER: StageStatus.OK, StageName.VLM: StageStatus.OK}, ClipStatus.ANALYZED),
        ({StageName.FILTER: StageStatus.ERROR, StageName.UPLOAD: StageStatus.OK}, ClipStatus.ERROR),
        (
            {
                StageName.UPLOAD: StageStatus.OK,
                StageName.FILTER: StageStatus.OK,
                StageName.VLM: StageStatus.SKIPPED,
                StageName.NOTIFY: StageStatus.SKIPPED,
            },
            ClipStatus.DONE,
        ),
        (
            {
                StageName.UPLOAD: StageStatus.RUNNING,
                StageName.FILTER: StageStatus.OK,
                StageName.VLM: StageStatus.SKIPPED,
                StageName.NOTIFY: StageStatus.OK,
            },
            ClipStatus.FILTERED,
        ),
    ],
)
def test_status_is_derived_from_the_journal(
    stages: dict[StageName, StageStatus], expected: ClipStatus
) -> None:
    # Given a stage journal
    journal = {name: StageLog(status=status) for name, status in stages.items()}

    # When the status is derived
    # Then it is the summary the design notes define
    assert derive_status(journal) == expected


def test_status_is_written_with_the_state_and_never_read_back() -> None:
    # Given a stored state claiming a status its journal contradicts
    raw = {
        "clip_id": "c_1700000000.mp4",
        "camera_name": "c",
        "local_path": "/x",
        "status": "done",
    }

    # When it is read
    state = ClipStateData.model_validate(raw)

    # Then the status comes from the journal, and is part of the JSON written
    assert state.status == ClipStatus.QUEUED_LOCAL
    assert state.model_dump(mode="json")["status"] == "queued_local"


def test_v1_rows_are_upgraded_when_read() -> None:
    # Given a row written by schema version 1 (no clip_id, stored status)
    raw = {
        "schema_version": 1,
        "camera_name": "front_door",
        "status": "analyzed",
        "stages": {"upload": {"status": "ok", "attempts": 1}},
        "local_path": "recordings/front_door_1734307501.mp4",
        "analysis_result": {"risk_level": "low", "activity_type": "delivery", "summary": "x"},
    }

    # When it is read
    state = ClipStateData.from_stored("front_door_1734307501.mp4", raw)

    # Then it is a current model with its clip_id filled in
    assert state.schema_version == 2
    assert state.clip_id == "front_door_1734307501.mp4"
    assert state.analysis_result is not None
    assert state.analysis_result.risk_level == RiskLevel.LOW


def test_clip_id_rule_round_trips() -> None:
    # Given clip ids made by the rule
    first = clip_id_for("front_door", 1700000000)
    third = clip_id_for("front_door", 1700000000, n=3)

    # When parsed
    parsed = parse_clip_id(third)

    # Then the parts come back; names off the rule are refused
    assert first == "front_door_1700000000.mp4"
    assert third == "front_door_1700000000_3.mp4"
    assert parsed is not None and (parsed.camera_name, parsed.unix_seconds, parsed.n) == (
        "front_door",
        1700000000,
        3,
    )
    assert parse_clip_id("front_door_1700000000.txt") is None
    assert parse_clip_id("holiday.mp4") is None
    assert parse_clip_id("front_door_1700000000.mp4", camera_name="backyard") is None


def test_collisions_get_deterministic_suffixes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given two clips already taken in the same second
    (tmp_path / "cam_1700000000.mp4").touch()
    (tmp_path / "cam_1700000000_2.mp4").touch()

    # When the next path is allocated
    path = free_clip_path(tmp_path, "cam", 1700000000, ".mp4")

    # Then it is _3
    assert path.name == "cam_1700000000_3.mp4"
