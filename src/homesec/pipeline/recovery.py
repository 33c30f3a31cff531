"""Start-up recovery: every clip that is not `done` is processed again, newest first.

Candidates are the clips in the sources' local spools whose state is missing or unfinished,
plus unfinished clips whose local file is gone but that were uploaded: their round downloads
them to the work folder (under the pipeline's limit of clips in flight, not all at once
before the sources start) and removes the copy afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from homesec.interfaces import ClipSource
from homesec.models.clip import Clip
from homesec.models.enums import ClipStatus, EventType
from homesec.models.state import ClipStateData
from homesec.pipeline.core import ClipPipeline
from homesec.pipeline.fetch import clip_from_state
from homesec.pipeline.stages import log_extra
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)


async def recover_unfinished(
    pipeline: ClipPipeline,
    sources: list[ClipSource],
    repository: ClipRepository,
) -> int:
    """Submit every unfinished clip to the pipeline; returns how many were submitted."""
    spooled = await _spooled_clips(sources)
    states = await repository.get_many(list(spooled))
    if states is None:
        logger.error("Database unreachable during recovery: re-processing every spooled clip")
        states = {}
    clips = [clip for clip_id, clip in spooled.items() if not _is_done(states.get(clip_id))]
    clips += await _pruned_clips(repository, exclude=set(spooled))
    clips.sort(key=lambda clip: clip.start_ts, reverse=True)
    for clip in clips:
        logger.info(
            "Recovering %s",
            clip.clip_id,
            extra=log_extra(clip.clip_id, clip.camera_name, EventType.CLIP_RECOVERED),
        )
        pipeline.submit(clip)
    return len(clips)


def _is_done(state: ClipStateData | None) -> bool:
    return state is not None and state.status == ClipStatus.DONE


async def _spooled_clips(sources: list[ClipSource]) -> dict[str, Clip]:
    spooled: dict[str, Clip] = {}
    for source in sources:
        for clip in await asyncio.to_thread(source.spooled_clips):
            spooled[clip.clip_id] = clip
    return spooled


async def _pruned_clips(repository: ClipRepository, exclude: set[str]) -> list[Clip]:
    """Unfinished clips that are in storage but no longer in a spool."""
    unfinished = await repository.list_unfinished() or []
    clips = []
    for state in unfinished:
        if state.clip_id in exclude or not state.storage_uri:
            continue
        local_path = Path(state.local_path)
        if not await asyncio.to_thread(local_path.exists):
            clips.append(await asyncio.to_thread(clip_from_state, state, local_path))
    return clips
