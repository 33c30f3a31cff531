"""A clip's video (HTTP range requests, for seeking) and snapshot: key, session or signed URL."""

from __future__ import annotations

from mimetypes import guess_type
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse

from homesec.api import service
from homesec.api.auth import require_media_access
from homesec.api.context import Context
from homesec.api.media_files import MediaUnavailableError

router = APIRouter(
    prefix="/api/v1/clips/{clip_id}", tags=["media"], dependencies=[Depends(require_media_access)]
)

# Signed URLs are per-user links: shared caches must not keep the media.
_CACHE_CONTROL = {"Cache-Control": "private, max-age=300"}
_VIDEO_RESPONSES: dict[int | str, dict[str, Any]] = {
    206: {"description": "The requested byte range"},
    416: {"description": "Range not satisfiable"},
    502: {"description": "Storage could not provide the clip"},
}


@router.head("/video", response_class=FileResponse, responses=_VIDEO_RESPONSES)
@router.get("/video", response_class=FileResponse, responses=_VIDEO_RESPONSES)
async def video(context: Context, clip_id: str, download: bool = False) -> FileResponse:
    """The clip's video; `download=true` asks the browser to save it."""
    listing = await service.clip_listing(context, clip_id)
    try:
        path = await context.media.video(listing.state)
    except MediaUnavailableError as exc:
        detail = "storage could not provide the clip"
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail) from exc
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the clip's video is gone")
    return _file(path, clip_id, attachment=download)


@router.get("/snapshot", response_class=FileResponse)
async def snapshot(context: Context, clip_id: str) -> FileResponse:
    listing = await service.clip_listing(context, clip_id)
    path = await context.media.snapshot(listing.state)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no snapshot for this clip")
    return _file(path, path.name)


def _file(path: Path, download_name: str, *, attachment: bool = False) -> FileResponse:
    media_type = guess_type(download_name)[0] or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers=_CACHE_CONTROL,
        filename=download_name,
        content_disposition_type="attachment" if attachment else "inline",
    )
