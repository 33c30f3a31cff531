"""Health probes (public) and diagnostics (API key when auth is on)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from homesec.health import HealthMonitor
from homesec.models.enums import HealthStatus
from homesec.models.health import Diagnostics, HealthReport


def _monitor(request: Request) -> HealthMonitor:
    monitor: HealthMonitor = request.app.state.health
    return monitor


def _status_code(report: HealthReport) -> int:
    unhealthy = report.status == HealthStatus.UNHEALTHY
    return status.HTTP_503_SERVICE_UNAVAILABLE if unhealthy else status.HTTP_200_OK


Monitor = Annotated[HealthMonitor, Depends(_monitor)]

public = APIRouter()
protected = APIRouter(prefix="/api/v1")


@public.get("/health")
async def probe(response: Response, monitor: Monitor) -> dict[str, str]:
    report = await monitor.report()
    response.status_code = _status_code(report)
    return {"status": report.status}


@public.get("/api/v1/health")
async def health(response: Response, monitor: Monitor) -> HealthReport:
    report = await monitor.report()
    response.status_code = _status_code(report)
    return report


@protected.get("/diagnostics")
async def diagnostics(monitor: Monitor) -> Diagnostics:
    return await monitor.diagnostics()
