"""What can be asked of the stored clips and what comes back: the list filter, the page
cursor, statistics and camera activity (the repository's read vocabulary, shared by the API
and the state queries)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field

from homesec.models.enums import ClipStatus, RiskLevel, StageName


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ClipFilter(BaseModel):
    """Which clips to list; every field narrows, None means any."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str | None = Field(default=None, description="Camera name")
    status: ClipStatus | None = Field(default=None, description="Summary status")
    risk_level: RiskLevel | None = Field(default=None, description="VLM risk level")
    activity_type: str | None = Field(default=None, description="VLM activity type")
    alerted: bool | None = Field(default=None, description="The alert policy decided to notify")
    detected_class: str | None = Field(default=None, description="A class the detector found")
    needs_review: bool | None = Field(
        default=None, description="The VLM asked for a review and nobody marked it reviewed"
    )
    q: str | None = Field(
        default=None,
        max_length=200,
        description="Words the clip's summary, activity, timeline, known names or camera "
        "hold (all of them); a time phrase such as 'after 6 pm' limits the hour it started",
    )
    since: datetime | None = Field(default=None, description="Received at or after (UTC if naive)")
    until: datetime | None = Field(default=None, description="Received before (UTC if naive)")


@dataclass(frozen=True)
class PageKey:
    """Where a page ends: the last clip's (created_at, clip_id); opaque to API clients."""

    created_at: datetime
    clip_id: str

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.clip_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> PageKey:
        """The key of a cursor from `encode`; ValueError when it is not one."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            created_at, clip_id = json.loads(raw)
            return cls(as_utc(datetime.fromisoformat(created_at)), str(clip_id))
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise ValueError("invalid cursor") from exc


class DayCount(BaseModel):
    day: date
    clips: int
    alerts: int
    errors: int


class VLMSpend(BaseModel):
    analyzed_clips: int = Field(description="Clips with recorded VLM usage")
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float = Field(description="Sum of the estimates that were known")


class ClipStats(BaseModel):
    """Activity between `since` and `until` (by received time, days in UTC)."""

    since: datetime
    until: datetime
    clips: int
    alerts: int
    errors: int
    per_day: list[DayCount]
    stage_failures: dict[StageName, int] = Field(description="Clips whose stage ended in error")
    vlm: VLMSpend


class CameraActivity(BaseModel):
    camera_name: str
    clips: int
    last_clip_at: datetime | None
