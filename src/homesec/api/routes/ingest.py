"""The HTTP ingest: a clip sent as the body of `POST /api/v1/ingest/{camera}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from homesec.api import service
from homesec.api.auth import require_key
from homesec.api.context import Context
from homesec.api.schemas import IngestedClip

router = APIRouter(prefix="/api/v1", tags=["ingest"], dependencies=[Depends(require_key)])


@router.post("/ingest/{camera}", status_code=status.HTTP_201_CREATED)
async def ingest(
    context: Context,
    camera: str,
    request: Request,
    filename: Annotated[
        str | None, Query(max_length=255, description="The clip's file name, if it has one")
    ] = None,
) -> IngestedClip:
    """Take the body as a new clip of a camera whose source is `http_ingest`: answered 201
    once it is on disk; 413 too large, 415 not a video, 400 empty, 404 unknown camera,
    409 a camera with another source, 507 it cannot be written (a full disk)."""
    return await service.ingest(context, camera, request.stream(), filename)
