"""Local retention: keep the spooled clips under `retention.max_local_size_bytes`.

Only clips that are uploaded and `done` may go, oldest first. It runs when a clip arrives and
every `retention.sweep_interval_s` (clips finish, and the database comes back, while no new
clip arrives), one pass at a time (a trigger during a pass is dropped), and never writes to
the storage backend or the database.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from homesec.interfaces import ClipSource
from homesec.models.clip import Clip, snapshot_name
from homesec.models.enums import ClipStatus, EventType
from homesec.models.state import ClipStateData
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SpooledFile:
    clip: Clip
    size: int


class RetentionPruner:
    def __init__(
        self, max_bytes: int, sources: list[ClipSource], repository: ClipRepository
    ) -> None:
        self._max_bytes = max_bytes
        self._sources = sources
        self._repository = repository
        self._running: asyncio.Task[list[str]] | None = None

    def trigger(self, reason: str) -> bool:
        """Start a prune pass unless one is running (single-flight: the trigger is dropped)."""
        if self._running is not None and not self._running.done():
            logger.debug("Prune pass already running; %s trigger dropped", reason)
            return False
        self._running = asyncio.create_task(self.prune(reason), name="retention")
        return True

    async def sweep_forever(self, interval_s: float) -> None:
        """Trigger a pass every `interval_s` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            self.trigger("periodic")

    async def wait(self) -> None:
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def prune(self, reason: str) -> list[str]:
        """One pass; returns the clip_ids whose local file was deleted."""
        files = await asyncio.to_thread(self._spooled_files)
        total = sum(file.size for file in files)
        if total <= self._max_bytes:
            return []
        states = await self._repository.get_many([file.clip.clip_id for file in files])
        if states is None:
            logger.warning("Retention skipped: database unreachable, eligibility unknown")
            return []
        eligible = sorted(
            (file for file in files if _eligible(states.get(file.clip.clip_id))),
            key=lambda file: file.clip.start_ts,
        )
        pruned: list[str] = []
        for file in eligible:
            if total <= self._max_bytes:
                break
            await asyncio.to_thread(_delete_local, file.clip)
            total -= file.size
            pruned.append(file.clip.clip_id)
            _log_pruned(file, reason)
        if total > self._max_bytes:
            logger.warning(
                "Local clips use %d bytes, over the %d cap, but nothing more may be pruned",
                total,
                self._max_bytes,
            )
        return pruned

    def _spooled_files(self) -> list[_SpooledFile]:
        files = []
        for source in self._sources:
            for clip in source.spooled_clips():
                try:
                    files.append(_SpooledFile(clip, clip.local_path.stat().st_size))
                except FileNotFoundError:
                    continue
        return files


def _log_pruned(file: _SpooledFile, reason: str) -> None:
    # A log record only: retention makes no database writes.
    clip = file.clip
    logger.info(
        "Pruned local copy of %s (%d bytes, reason=%s)",
        clip.clip_id,
        file.size,
        reason,
        extra={
            "event_type": EventType.LOCAL_FILE_PRUNED,
            "clip_id": clip.clip_id,
            "camera_name": clip.camera_name,
        },
    )


def _delete_local(clip: Clip) -> None:
    clip.local_path.unlink(missing_ok=True)
    clip.local_path.with_name(snapshot_name(clip.clip_id)).unlink(missing_ok=True)


def _eligible(state: ClipStateData | None) -> bool:
    return state is not None and state.status == ClipStatus.DONE and state.storage_uri is not None
