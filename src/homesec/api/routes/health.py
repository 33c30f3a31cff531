"""Health probes (public) and diagnostics (API key when auth is on)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from homesec.api.context import ApiContext, Context
from homesec.models.enums import HealthStatus
from homesec.models.health import Diagnostics, HealthReport

public = APIRouter()
protected = APIRouter(prefix="/api/v1")


@public.get("/health")
async def probe(response: Response, context: Context) -> dict[str, str]:
    return {"status": (await _report(context, response)).status}


@public.get("/api/v1/health")
async def health(response: Response, context: Context) -> HealthReport:
    return await _report(context, response)


@protected.get("/diagnostics")
async def diagnostics(context: Context) -> Diagnostics:
    return await context.monitor.diagnostics()


async def _report(context: ApiContext, response: Response) -> HealthReport:
    report = await context.monitor.report()
    unhealthy = report.status == HealthStatus.UNHEALTHY
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE if unhealthy else status.HTTP_200_OK
    return report
