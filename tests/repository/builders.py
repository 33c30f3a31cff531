"""Configs, clip states and events as the app and the pipeline build them, for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from homesec.models.alert import AlertDecision
from homesec.models.config import StateStoreConfig
from homesec.models.enums import EventType, RiskLevel, StageName, StageStatus
from homesec.models.events import ClipEvent
from homesec.models.results import AnalysisResult, FilterResult
from homesec.models.state import ClipStateData, StageLog

DSN_ENV = "HOMESEC_TEST_DB_DSN"


def state_store_config(tmp_path: Path, write_timeout_s: float = 5.0) -> StateStoreConfig:
    """A config reading the DSN from DSN_ENV; SQLite under tmp_path when that is unset."""
    return StateStoreConfig(
        dsn_env=DSN_ENV,
        sqlite_path=tmp_path / "var" / "homesec.db",
        write_timeout_s=write_timeout_s,
    )


def new_state(clip_id: str = "front_door_1700000000.mp4") -> ClipStateData:
    """A clip just received: every stage pending."""
    camera_name = clip_id.rsplit("_", 1)[0]
    return ClipStateData(
        clip_id=clip_id, camera_name=camera_name, local_path=f"/var/homesec/spool/{clip_id}"
    )


def analyzed_state(clip_id: str = "front_door_1700000000.mp4") -> ClipStateData:
    """A clip uploaded, filtered and analyzed, with every kind of result filled in."""
    state = new_state(clip_id)
    finished = datetime(2023, 11, 14, 22, 13, 30, tzinfo=UTC)
    for stage in (StageName.UPLOAD, StageName.FILTER, StageName.VLM):
        state.stages[stage] = StageLog(status=StageStatus.OK, attempts=1, finished_at=finished)
    state.start_ts = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    state.storage_uri = f"dropbox:/homesec/front_door/{clip_id}"
    state.view_url = f"https://www.dropbox.com/home/homesec/front_door/{clip_id}"
    state.filter_result = FilterResult(
        detected_classes=["person"], confidence=0.91, sampled_frames=12, model="yolo11n"
    )
    state.analysis_result = AnalysisResult(
        risk_level=RiskLevel.HIGH, activity_type="person_at_door", summary="A person knocks."
    )
    state.alert_decision = AlertDecision(notify=True, notify_reason="risk_level=high")
    return state


def done_state(clip_id: str) -> ClipStateData:
    state = analyzed_state(clip_id)
    state.stages[StageName.NOTIFY] = StageLog(status=StageStatus.OK, attempts=1)
    return state


def event(clip_id: str, event_type: EventType, message: str | None = None) -> ClipEvent:
    return ClipEvent(clip_id=clip_id, event_type=event_type, message=message)
