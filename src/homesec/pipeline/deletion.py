"""Deleting a clip for good, at a person's request: its objects in storage (the clip, its
analysis and snapshot), its local copies, then its state (its events stay, ending with
`clip_deleted`). Storage goes first: when it fails, nothing else is touched and the delete
can simply be asked again (every step is idempotent)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from homesec.interfaces import StorageBackend
from homesec.models.clip import analysis_name, snapshot_name
from homesec.models.enums import ActionRefusal
from homesec.models.results import ActionRefused
from homesec.models.state import ClipStateData
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)


async def delete_clip(
    state: ClipStateData, storage: StorageBackend, repository: ClipRepository
) -> ActionRefused | None:
    clip_id, camera = state.clip_id, state.camera_name
    names = [clip_id, analysis_name(clip_id), snapshot_name(clip_id)]
    try:
        for name in names:
            await storage.delete(f"{camera}/{name}")
    except Exception as exc:
        logger.error("Storage did not delete %s: %s", clip_id, exc, extra={"clip_id": clip_id})
        return ActionRefused(
            reason=ActionRefusal.STORAGE_FAILED,
            message="storage did not delete it (the log says why); nothing else was deleted",
        )
    local = Path(state.local_path)
    for path in (local, local.with_name(snapshot_name(clip_id))):
        await asyncio.to_thread(path.unlink, missing_ok=True)
    if not await repository.delete_clip(state):
        return ActionRefused(
            reason=ActionRefusal.NOT_WRITTEN,
            message="the state database did not take the delete (its files are gone)",
        )
    logger.info("Clip %s deleted", clip_id, extra={"clip_id": clip_id, "camera_name": camera})
    return None
