"""Cameras (source health, last heartbeat, stored clips) and the whole system's status."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from homesec.api import service
from homesec.api.auth import require_key
from homesec.api.context import Context
from homesec.api.schemas import CameraStatus, SystemStatus

router = APIRouter(prefix="/api/v1", tags=["system"], dependencies=[Depends(require_key)])


@router.get("/cameras")
async def cameras(context: Context) -> list[CameraStatus]:
    return await service.camera_statuses(context)


@router.get(
    "/cameras/{camera}/live.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No live picture"}},
)
async def live_picture(context: Context, camera: str) -> Response:
    """The camera's latest frame (from a live source such as RTSP), never cached."""
    picture = await service.live_picture(context, camera)
    return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/system")
async def system(context: Context) -> SystemStatus:
    """Health of every component, camera and notifier, as the system page shows it."""
    return await service.system_status(context)
