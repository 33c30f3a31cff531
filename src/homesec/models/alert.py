"""Alert decisions and the payloads notifiers send."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from homesec.models.enums import RiskLevel, StageName, SystemAlertKind


class AlertDecision(BaseModel):
    """What the alert policy decided, with a reason a person can read."""

    notify: bool
    notify_reason: str
    mode: str | None = None
    """The mode HomeSec was in when it decided (None without modes)."""


class Alert(BaseModel):
    """The alert payload: exactly the fields of the MQTT contract (SPEC.md section 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    camera_name: str
    storage_uri: str | None
    view_url: str | None
    risk_level: RiskLevel | None
    activity_type: str | None
    notify_reason: str
    summary: str | None
    ts: datetime
    dedupe_key: str
    upload_failed: bool


class DetectionEvent(BaseModel):
    """The first, fast signal: the detector found a trigger class; the final alert follows
    with the same `dedupe_key` (MQTT `homecam/detections/{camera_name}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    camera_name: str
    detected_classes: list[str]
    confidence: float
    ts: datetime
    snapshot: str | None
    analysis_pending: bool
    dedupe_key: str


class SystemAlert(BaseModel):
    """An operational problem a person should know about (stage retries exhausted...)."""

    model_config = ConfigDict(frozen=True)

    kind: SystemAlertKind
    message: str
    ts: datetime
    clip_id: str | None = None
    camera_name: str | None = None
    stage: StageName | None = None
