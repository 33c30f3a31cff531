"""The mode (home, away, night...) and the per-camera alert switches."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from homesec.api import service
from homesec.api.auth import require_key
from homesec.api.context import Context
from homesec.api.schemas import AlertsSwitch, ModeChoice, ModeStatus
from homesec.models.enums import ModeSetter

router = APIRouter(prefix="/api/v1", tags=["modes"], dependencies=[Depends(require_key)])


@router.get("/mode")
async def get_mode(context: Context) -> ModeStatus:
    """The mode in effect, who set it and when, and each camera's alert switch."""
    return service.mode_status(context)


@router.put("/mode")
async def put_mode(context: Context, choice: ModeChoice) -> ModeStatus:
    """Set the mode (it holds until the schedule's next change); 400 for an unknown one."""
    return await service.set_mode(context, choice.mode, ModeSetter.API)


@router.put("/cameras/{camera}/alerts")
async def put_alerts(context: Context, camera: str, switch: AlertsSwitch) -> ModeStatus:
    """Switch a camera's alerts on or off in every mode (it keeps recording and uploading)."""
    return await service.set_alerts(context, camera, switch.on, ModeSetter.API)
