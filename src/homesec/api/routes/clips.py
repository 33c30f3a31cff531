"""Clips: the filtered, cursor-paged list and one clip with its state and events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from homesec.api import service
from homesec.api.auth import require_key
from homesec.api.context import Context
from homesec.api.schemas import ClipDetail, ClipListParams, ClipPageOut

router = APIRouter(prefix="/api/v1", tags=["clips"], dependencies=[Depends(require_key)])


@router.get("/clips")
async def list_clips(context: Context, params: Annotated[ClipListParams, Query()]) -> ClipPageOut:
    """Clips newest first (by received time); follow `next_cursor` for older ones."""
    return await service.clip_page(context, params)


@router.get("/clips/{clip_id}")
async def get_clip(context: Context, clip_id: str) -> ClipDetail:
    return await service.clip_detail(context, clip_id)


@router.delete("/clips/{clip_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_clip(context: Context, clip_id: str) -> None:
    """Delete the clip for good: its video, analysis and snapshot in storage, its local
    copies and its state (its events stay, ending with `clip_deleted`). 409 while it is
    still processed; 502 when storage fails (nothing else is deleted: ask again)."""
    await service.delete_clip(context, clip_id)


@router.post("/clips/{clip_id}/reanalyse", status_code=status.HTTP_202_ACCEPTED)
async def reanalyse(context: Context, clip_id: str) -> ClipDetail:
    """Run the detector, the VLM and the alert policy again with today's config, in the
    background (no detection event, no alert: the clip is old). 409 while it is processed."""
    await service.reanalyse(context, clip_id)
    return await service.clip_detail(context, clip_id)


@router.post("/clips/{clip_id}/reviewed")
async def mark_reviewed(context: Context, clip_id: str) -> ClipDetail:
    """A person looked at the clip: it no longer needs review."""
    return await service.mark_reviewed(context, clip_id)
