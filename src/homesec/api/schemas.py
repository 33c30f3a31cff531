"""Pydantic models of the API's HTTP bodies (requests and responses)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from homesec.models.alert import AlertDecision
from homesec.models.enums import ClipStatus, HealthStatus, ModeSetter, RiskLevel, StageName
from homesec.models.events import ClipEvent
from homesec.models.health import ComponentHealth
from homesec.models.queries import ClipFilter
from homesec.models.results import AnalysisResult, FilterResult
from homesec.models.state import StageLog
from homesec.pipeline.providers import ProviderStats

MAX_PAGE_SIZE = 200


class ClipListParams(ClipFilter):
    """Query string of `GET /api/v1/clips`: the filters, the page size and the cursor."""

    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Clips per page")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")


class ClipSummary(BaseModel):
    """One clip in a list: what happened, what was decided, where its media are."""

    clip_id: str
    camera_name: str
    status: ClipStatus
    received_at: datetime = Field(description="When HomeSec first recorded the clip")
    start_ts: datetime | None = Field(description="When the recording started")
    risk_level: RiskLevel | None
    activity_type: str | None
    summary: str | None = Field(description="The VLM's summary")
    detected_classes: list[str]
    alerted: bool | None = Field(description="The alert policy's decision (null: not decided)")
    notify_reason: str | None
    needs_review: bool = Field(
        default=False, description="The VLM asked for a review and nobody marked it reviewed"
    )
    upload_failed: bool
    view_url: str | None = Field(description="The storage backend's link")
    video_url: str = Field(description="Signed, short-lived: plays without the API key")
    snapshot_url: str = Field(description="Signed, short-lived; 404 until a snapshot exists")


class ClipPageOut(BaseModel):
    items: list[ClipSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class ClipDetail(BaseModel):
    """One clip: its summary, state (stage journal, pointers), detections, analysis, events."""

    clip: ClipSummary
    stages: dict[StageName, StageLog] = Field(description="The per-stage journal")
    notifications: dict[str, StageLog] = Field(description="Delivery journal per sink")
    local_path: str
    storage_uri: str | None
    analysis_uri: str | None
    snapshot_uri: str | None
    filter_result: FilterResult | None = Field(description="Detections of the object filter")
    analysis: AnalysisResult | None = Field(description="The VLM's structured analysis")
    alert_decision: AlertDecision | None
    events: list[ClipEvent] = Field(description="Lifecycle events, oldest first")


class CameraStatus(BaseModel):
    name: str
    healthy: bool
    last_heartbeat: datetime | None
    clips: int = Field(description="Clips stored for this camera")
    last_clip_at: datetime | None


class SystemStatus(BaseModel):
    """What the system page shows: overall health, components, cameras, notifiers."""

    status: HealthStatus
    version: str
    uptime_s: float
    components: list[ComponentHealth]
    notifiers: list[ComponentHealth]
    cameras: list[CameraStatus]
    clips_in_flight: int
    dropped_state_writes: int
    vlm_providers: list[ProviderStats] = Field(
        default_factory=list, description="Each configured VLM's work since start (fallbacks)"
    )


class LoginForm(BaseModel):
    """The web UI's login form (`application/x-www-form-urlencoded`)."""

    model_config = ConfigDict(extra="ignore")

    api_key: str = Field(min_length=1, max_length=4096)


class IngestedClip(BaseModel):
    """A clip the HTTP ingest took: on disk, and on its way through the pipeline."""

    clip_id: str
    camera_name: str
    duration_s: float


class CameraAlerts(BaseModel):
    name: str
    alerts_on: bool = Field(description="false: switched off by hand, in every mode")


class ModeStatus(BaseModel):
    """The mode in effect, the modes there are, and each camera's alert switch."""

    mode: str
    modes: list[str]
    set_at: datetime
    set_by: ModeSetter
    cameras: list[CameraAlerts]


class ModeChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str = Field(max_length=64, description="One of the configured modes")


class AlertsSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool = Field(description="Whether the camera's alerts are on")
