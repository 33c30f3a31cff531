"""Rows of the append-only `clip_events` table."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field, JsonValue

from homesec.models.enums import EventType, StageName


def utc_now() -> datetime:
    return datetime.now(UTC)


class ClipEvent(BaseModel):
    """One thing that happened to a clip."""

    clip_id: str
    event_type: EventType
    ts: datetime = Field(default_factory=utc_now)
    camera_name: str | None = None
    stage: StageName | None = None
    attempt: int | None = None
    message: str | None = None
    detail: dict[str, JsonValue] = Field(default_factory=dict)
