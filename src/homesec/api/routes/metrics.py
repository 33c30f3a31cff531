"""`GET /metrics`: the Prometheus text exposition (API key when auth is on)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from homesec import metrics
from homesec.api.auth import require_key
from homesec.api.context import Context

router = APIRouter(tags=["metrics"], dependencies=[Depends(require_key)])


@router.get("/metrics", response_class=Response)
async def exposition(context: Context) -> Response:
    # Source health is cheap to read, so it is fresh at every scrape.
    for source in context.sources:
        metrics.set_source_health(source.camera_name, source.is_healthy())
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
