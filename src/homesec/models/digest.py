"""The digest: one message telling what happened in a period (a day, or a time away)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from homesec.models.enums import DigestTrigger, RiskLevel
from homesec.models.modes import MODE_NAME, check_timezone


class DigestConfig(BaseModel):
    """When the digest goes out; the notifiers that get it say `digest: true`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Send a digest (to sinks with digest: true)")
    at: time | None = Field(
        default=time(8, 0),
        description="Every day at this time of day, HH:MM, local (null: not daily)",
    )
    on_mode: Annotated[str | None, Field(pattern=MODE_NAME)] = Field(
        default=None,
        description="Also when HomeSec's mode changes to this one (home): what happened since "
        "the last digest",
    )
    timezone: Annotated[str | None, AfterValidator(check_timezone)] = Field(
        default=None, description="Time zone of `at` (default: the machine's)"
    )
    max_notable: int = Field(
        default=10, ge=1, le=50, description="Clips worth a look listed, the riskiest first"
    )
    retry_s: float = Field(
        default=300.0, gt=0, description="Wait before a failed digest (VLM or sink) is tried again"
    )


class DigestClip(BaseModel):
    """A clip worth a look, as the digest lists it."""

    clip_id: str
    camera_name: str
    ts: datetime
    risk_level: RiskLevel | None = None
    activity_type: str | None = None
    summary: str | None = None
    alerted: bool = False
    link: str | None = Field(default=None, description="Where to watch it (storage's view URL)")


class Digest(BaseModel):
    """What happened from `period_start` to `period_end`, counted and told."""

    period_start: datetime
    period_end: datetime
    trigger: DigestTrigger
    clips: int
    alerts: int
    per_camera: dict[str, int]
    activities: dict[str, int]
    notable: list[DigestClip]
    text: str = Field(description="The digest as a person reads it")
    written_by: str = Field(description="The model that wrote `text`, or `template`")


class DigestState(BaseModel):
    """Kept in the state database: where the last digest ended, and one on its way."""

    last_end: datetime | None = None
    pending: Digest | None = None
    delivered: list[str] = Field(
        default_factory=list, description="Sinks that have the pending digest already"
    )
