"""Health reports served by the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel

from homesec.models.enums import HealthStatus


class ComponentHealth(BaseModel):
    name: str
    ok: bool
    detail: str | None = None


class CameraHealth(BaseModel):
    name: str
    healthy: bool
    last_heartbeat: float | None


class HealthReport(BaseModel):
    status: HealthStatus
    version: str
    uptime_s: float
    components: list[ComponentHealth]
    cameras: list[CameraHealth]


class Diagnostics(BaseModel):
    health: HealthReport
    clips_in_flight: int
    state_backend: str
    dropped_state_writes: int
    notifiers: list[ComponentHealth]
