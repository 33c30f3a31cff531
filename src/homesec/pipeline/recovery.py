"""Start-up recovery: every clip that is not `done` is processed again, newest first.

Candidates are the clips in the sources' local spools whose state is missing or unfinished,
plus unfinished clips whose local file is gone but that were uploaded: those are downloaded
to the work folder first, and the copy is removed once processed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from homesec.interfaces import ClipSource, StorageBackend
from homesec.models.clip import Clip
from homesec.models.enums import ClipStatus, EventType
from homesec.models.state import ClipStateData
from homesec.pipeline.core import ClipPipeline
from homesec.pipeline.fetch import fetch_from_storage, remove_when_done
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)


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
        if task is not None:
            task.add_done_callback(remove_when_done(clip))
    return len(clips)


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
        clip = await fetch_from_storage(state, storage, work_dir)
        if clip is not None:
            clips.append(clip)
    return clips
