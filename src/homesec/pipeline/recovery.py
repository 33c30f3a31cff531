"""Start-up recovery: every clip that is not `done` is processed again, newest first.

Candidates are the clips in the sources' local spools whose state is missing or unfinished,
plus unfinished clips whose local file is gone but that were uploaded: those are downloaded
to the work folder first, and the copy is removed once processed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from homesec.interfaces import ClipSource, StorageBackend
from homesec.models.clip import Clip
from homesec.models.enums import ClipStatus, EventType
from homesec.models.state import ClipStateData
from homesec.pipeline.core import ClipPipeline
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

_RECOVERED_BACKEND = "recovery"


async def recover_unfinished(
    pipeline: ClipPipeline,
    sources: list[ClipSource],
    repository: ClipRepository,
    storage: StorageBackend,
    work_dir: Path,
) -> int:
    """Submit every unfinished clip to the pipeline; returns how many were submitted."""
    spooled = await _spooled_clips(sources)
    states = await repository.get_many(list(spooled))
    if states is None:
        logger.error("Database unreachable during recovery: re-processing every spooled clip")
        states = {}
    clips = [clip for clip_id, clip in spooled.items() if not _is_done(states.get(clip_id))]
    clips += await _downloaded_clips(repository, storage, work_dir, exclude=set(spooled))
    clips.sort(key=lambda clip: clip.start_ts, reverse=True)
    for clip in clips:
        logger.info(
            "Recovering %s",
            clip.clip_id,
            extra={
                "event_type": EventType.CLIP_RECOVERED,
                "clip_id": clip.clip_id,
                "camera_name": clip.camera_name,
            },
        )
        task = pipeline.submit(clip)
        if task is not None and clip.source_backend == _RECOVERED_BACKEND:
            task.add_done_callback(_remove_copy(clip.local_path))
    return len(clips)


def _remove_copy(path: Path) -> Callable[[object], None]:
    # The downloaded copy is scratch: the clip already lives in storage.
    def remove(_: object) -> None:
        path.unlink(missing_ok=True)

    return remove


def _is_done(state: ClipStateData | None) -> bool:
    return state is not None and state.status == ClipStatus.DONE


async def _spooled_clips(sources: list[ClipSource]) -> dict[str, Clip]:
    spooled: dict[str, Clip] = {}
    for source in sources:
        for clip in await asyncio.to_thread(source.spooled_clips):
            spooled[clip.clip_id] = clip
    return spooled


async def _downloaded_clips(
    repository: ClipRepository, storage: StorageBackend, work_dir: Path, exclude: set[str]
) -> list[Clip]:
    unfinished = await repository.list_unfinished() or []
    clips = []
    for state in unfinished:
        if state.clip_id in exclude or not state.storage_uri:
            continue
        if await asyncio.to_thread(Path(state.local_path).exists):
            continue
        clip = await _download(state, storage, work_dir)
        if clip is not None:
            clips.append(clip)
    return clips


async def _download(state: ClipStateData, storage: StorageBackend, work_dir: Path) -> Clip | None:
    assert state.storage_uri is not None
    target = work_dir / state.clip_id
    try:
        await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
        await storage.get(state.storage_uri, target)
    except Exception:
        logger.exception(
            "Cannot download %s for recovery", state.clip_id, extra={"clip_id": state.clip_id}
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
            "source_backend": _RECOVERED_BACKEND,
        }
    )
