"""A clip whose local copy is gone, downloaded from storage to the work folder to run again.

The copy is scratch (the clip lives in storage): the round that fetched it removes it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from homesec.interfaces import StorageBackend
from homesec.models.clip import Clip, snapshot_name
from homesec.models.state import ClipStateData

logger = logging.getLogger(__name__)

FETCHED_BACKEND = "recovery"
"""The `source_backend` of a clip known only from its state (its copy downloaded)."""


def clip_from_state(state: ClipStateData, local_path: Path) -> Clip:
    """Blocking: the clip a stored state describes, its file at `local_path`."""
    start: datetime | float | None = state.start_ts
    if start is None:
        start = local_path.stat().st_mtime if local_path.exists() else 0.0
    return Clip.model_validate(
        {
            "clip_id": state.clip_id,
            "camera_name": state.camera_name,
            "local_path": local_path,
            "start_ts": start,
            "end_ts": start,
            "duration_s": 0.0,
            "source_backend": FETCHED_BACKEND,
        }
    )


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
    return await asyncio.to_thread(clip_from_state, state, target)


def remove_local(clip: Clip) -> None:
    """Blocking: remove the clip's local file (a downloaded copy, or a pruned one) and the
    snapshot made next to it."""
    clip.local_path.unlink(missing_ok=True)
    clip.local_path.with_name(snapshot_name(clip.clip_id)).unlink(missing_ok=True)
