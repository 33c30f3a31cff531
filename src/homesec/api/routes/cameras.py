"""Cameras (source health, last heartbeat, stored clips) and the whole system's status."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from homesec.api import service
from homesec.api.auth import require_key
from homesec.api.context import Context
from homesec.api.schemas import CameraStatus, SystemStatus

router = APIRouter(prefix="/api/v1", tags=["system"], dependencies=[Depends(require_key)])


@router.get("/cameras")
async def cameras(context: Context) -> list[CameraStatus]:
    return await service.camera_statuses(context)


@router.get("/system")
async def system(context: Context) -> SystemStatus:
    """Health of every component, camera and notifier, as the system page shows it."""
    return await service.system_status(context)
