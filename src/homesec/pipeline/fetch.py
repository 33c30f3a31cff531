"""A clip whose local copy is gone, downloaded from storage to the work folder to run again.

The copy is scratch (the clip lives in storage): it is removed once the clip's round ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from homesec.interfaces import StorageBackend
from homesec.models.clip import Clip, snapshot_name
from homesec.models.state import ClipStateData

logger = logging.getLogger(__name__)

FETCHED_BACKEND = "recovery"
"""The `source_backend` of a downloaded copy."""


async def fetch_from_storage(
    state: ClipStateData, storage: StorageBackend, work_dir: Path
) -> Clip | None:
    """Download the clip to `work_dir`; None when it is not in storage or cannot be read."""
    if state.storage_uri is None:
        return None
    target = work_dir / state.clip_id
    try:
        await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
        await storage.get(state.storage_uri, target)
    except Exception:
        logger.exception(
            "Cannot download %s from storage", state.clip_id, extra={"clip_id": state.clip_id}
        )
        return None
    start = state.start_ts or (await asyncio.to_thread(target.stat)).st_mtime
    return Clip.model_validate(
        {
            "clip_id": state.clip_id,
            "camera_name": state.camera_name,
            "local_path": target,
            "start_ts": start,
            "end_ts": start,
            "duration_s": 0.0,
            "source_backend": FETCHED_BACKEND,
        }
    )


def remove_when_done(clip: Clip) -> Callable[[object], None]:
    """A done-callback that removes a downloaded copy (not a source's own clip)."""

    def remove(_: object) -> None:
        if clip.source_backend == FETCHED_BACKEND:
            clip.local_path.unlink(missing_ok=True)
            clip.local_path.with_name(snapshot_name(clip.clip_id)).unlink(missing_ok=True)

    return remove
