"""Statistics: clips per day, alerts, failures per stage, VLM tokens and cost."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends

from homesec.api import service
from homesec.api.auth import require_key
from homesec.api.context import Context
from homesec.models.queries import ClipStats

router = APIRouter(prefix="/api/v1", tags=["stats"], dependencies=[Depends(require_key)])


@router.get("/stats")
async def stats(
    context: Context, since: datetime | None = None, until: datetime | None = None
) -> ClipStats:
    """Clips received in [since, until); by default the last 30 days. Days are UTC."""
    return await service.clip_stats(context, since, until)
