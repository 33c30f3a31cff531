"""`clip_states.data`: one clip's pointers, results and per-stage journal.

`status` is never stored on its own: it is derived from the journal each time the model is
serialized, so the two cannot disagree. Rows written by an older `schema_version` are
upgraded by `ClipStateData.from_stored` when read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from homesec.models.alert import AlertDecision
from homesec.models.enums import ClipStatus, StageName, StageStatus
from homesec.models.results import AnalysisResult, FilterResult

SCHEMA_VERSION = 2


class StageLog(BaseModel):
    """Journal of one stage: where it stands, how often it was tried, the last error."""

    status: StageStatus = StageStatus.PENDING
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None


class ClipStateData(BaseModel):
    """Complete state of one clip, stored as JSON in `clip_states.data`."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    clip_id: str
    camera_name: str
    source_backend: str | None = None
    stages: dict[StageName, StageLog] = Field(
        default_factory=lambda: {stage: StageLog() for stage in StageName}
    )
    local_path: str
    start_ts: datetime | None = None
    storage_uri: str | None = None
    view_url: str | None = None
    analysis_uri: str | None = None
    snapshot_uri: str | None = None
    filter_result: FilterResult | None = None
    analysis_result: AnalysisResult | None = None
    alert_decision: AlertDecision | None = None
    detection_sent_at: datetime | None = Field(
        default=None,
        description="When the detection event went out (once per clip, maybe while recording)",
    )
    notifications: dict[str, StageLog] = Field(
        default_factory=dict, description="Delivery journal of each notification sink"
    )
    reviewed_at: datetime | None = Field(
        default=None, description="When a person marked the clip reviewed"
    )
    reanalysed_at: datetime | None = Field(
        default=None,
        description="When a person asked for the clip to be analysed again (with the config "
        "of that time); such a round sends no detection event and no alert",
    )
    system_alerted: list[StageName] = Field(
        default_factory=list,
        description="Stages whose giving up was reported by a system alert (once per clip)",
    )
    done_at: datetime | None = Field(
        default=None, description="When the clip first became done (clip_done is recorded once)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> ClipStatus:
        return derive_status(self.stages)

    def stage(self, name: StageName) -> StageLog:
        return self.stages.get(name) or StageLog()

    def is_stage_ok(self, name: StageName) -> bool:
        return self.stage(name).status == StageStatus.OK

    @property
    def is_uploaded(self) -> bool:
        """The clip is safe in storage: its local copy may go, recovery can download it."""
        return self.is_stage_ok(StageName.UPLOAD) and self.storage_uri is not None

    @property
    def upload_failed(self) -> bool:
        """An upload was tried and failed; it is retried in the background until it works."""
        upload = self.stage(StageName.UPLOAD)
        return upload.status != StageStatus.OK and upload.last_error is not None

    @property
    def needs_review(self) -> bool:
        """The VLM asked for a person to look at the clip, and nobody marked it reviewed."""
        analysis = self.analysis_result
        return analysis is not None and analysis.requires_review and self.reviewed_at is None

    @property
    def is_settled(self) -> bool:
        """No stage is waiting or running: the clip is done, or ended in error."""
        return self.status in (ClipStatus.DONE, ClipStatus.ERROR)

    @property
    def alerted_sinks(self) -> list[str]:
        """The notification sinks that took the clip's alert."""
        return [name for name, log in self.notifications.items() if log.status == StageStatus.OK]

    def has_started(self) -> bool:
        """Whether any stage was tried: the pipeline had the finished clip before."""
        return any(
            log.status != StageStatus.PENDING or log.attempts for log in self.stages.values()
        )

    @classmethod
    def from_stored(cls, clip_id: str, raw: dict[str, Any]) -> ClipStateData:
        """Validate a stored row, upgrading it from older schema versions first."""
        data = dict(raw)
        version = int(data.get("schema_version", 1))
        while version < SCHEMA_VERSION:
            data = _UPGRADES[version](clip_id, data)
            version += 1
        return cls.model_validate(data)


def derive_status(stages: dict[StageName, StageLog]) -> ClipStatus:
    """The summary status: any error wins; done when every stage finished; else progress."""
    # Hot: the clips API derives it for every listed clip. A missing stage is pending.
    statuses = [log.status for log in stages.values()]
    if StageStatus.ERROR in statuses:
        return ClipStatus.ERROR
    if len(stages) == _STAGE_COUNT and all(status in _FINISHED for status in statuses):
        return ClipStatus.DONE
    for stage, status in _PROGRESS:
        log = stages.get(stage)
        if log is not None and log.status == StageStatus.OK:
            return status
    return ClipStatus.QUEUED_LOCAL


_FINISHED = frozenset({StageStatus.OK, StageStatus.SKIPPED})
_STAGE_COUNT = len(StageName)
_PROGRESS = (
    (StageName.VLM, ClipStatus.ANALYZED),
    (StageName.FILTER, ClipStatus.FILTERED),
    (StageName.UPLOAD, ClipStatus.UPLOADED),
)


def _upgrade_v1(clip_id: str, data: dict[str, Any]) -> dict[str, Any]:
    # v1 (the original design) had no clip_id in the JSON and kept a stored status.
    data.pop("status", None)
    data.setdefault("clip_id", clip_id)
    data["schema_version"] = 2
    return data


_UPGRADES: dict[int, Callable[[str, dict[str, Any]], dict[str, Any]]] = {1: _upgrade_v1}
