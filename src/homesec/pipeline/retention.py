"""Local retention: keep the spool under `retention.max_local_size_bytes`, and its disk above
`retention.min_free_bytes` free, so recording never stops on a full disk.

Only clips that are safe in storage and settled (done, or ended in error: recovery can
download them again) may go, oldest first, never one being processed. A clip not in storage
is never deleted: when the limits cannot be held that way (uploads failing too), the pruner
says so once (a system alert, the health turns degraded, a metric) until they hold again.
It runs when a clip arrives and every `retention.sweep_interval_s`, one pass at a time (a
trigger during a pass is dropped), and never writes to the storage backend or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from homesec import metrics
from homesec.interfaces import ClipSource
from homesec.models.alert import SystemAlert
from homesec.models.clip import Clip
from homesec.models.config import RetentionConfig
from homesec.models.enums import EventType, SystemAlertKind
from homesec.models.events import utc_now
from homesec.models.state import ClipStateData
from homesec.pipeline.fetch import remove_local
from homesec.pipeline.stages import log_extra
from homesec.repository.clip_repository import ClipRepository
from homesec.single_flight import SingleRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SpooledFile:
    clip: Clip
    size: int
    device: int


@dataclass
class _Pressure:
    """How far the spool is from its limits while a pass deletes files."""

    total: int
    cap: int | None
    min_free: int
    free: dict[int, int] = field(default_factory=dict)  # device -> free bytes
    busy: int = 0  # bytes of clips being processed: they go once settled, not a problem yet

    def relieved_by(self, file: _SpooledFile) -> bool:
        return self.over_cap() or self.free.get(file.device, self.min_free) < self.min_free

    def deleted(self, file: _SpooledFile) -> None:
        self.total -= file.size
        self.free[file.device] = self.free.get(file.device, 0) + file.size

    def over_cap(self) -> bool:
        return self.cap is not None and self.total > self.cap

    def problem(self) -> str | None:
        """What cannot be held, or None when every limit holds."""
        problems = []
        if self.cap is not None and self.total - self.busy > self.cap:
            problems.append(f"local clips use {self.total} bytes, over the {self.cap} cap")
        low = sorted(free for free in self.free.values() if free < self.min_free)
        if low:
            problems.append(f"{low[0]} bytes free on the spool's disk, under {self.min_free}")
        return "; ".join(problems) or None


class RetentionPruner:
    def __init__(
        self,
        config: RetentionConfig,
        sources: list[ClipSource],
        repository: ClipRepository,
        *,
        busy: Callable[[str], bool],
        system_alert: Callable[[SystemAlert], Awaitable[bool]],
        work_dir: Path,
    ) -> None:
        self._config = config
        self._work_dir = work_dir
        self._sources = sources
        self._repository = repository
        self._busy = busy
        self._system_alert = system_alert
        self._passes = SingleRun()
        self._sweep: asyncio.Task[None] | None = None
        self.problem: str | None = None
        """Why the limits cannot be held right now (None: they hold); health shows it."""
        self._reported = False

    def trigger(self, reason: str) -> bool:
        """Start a prune pass unless one is running (single-flight: the trigger is dropped)."""
        if self._passes.start(partial(self._pass, reason), name="retention"):
            return True
        logger.debug("Prune pass already running; %s trigger dropped", reason)
        return False

    async def start(self) -> None:
        """Sweep in the background: a pass every `retention.sweep_interval_s`."""
        self._sweep = asyncio.create_task(self._sweep_forever(), name="retention-sweep")

    async def aclose(self) -> None:
        """Stop sweeping and let a running pass finish."""
        sweep, self._sweep = self._sweep, None
        if sweep is not None:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
        await self.wait()

    async def wait(self) -> None:
        await self._passes.wait()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.sweep_interval_s)
            self.trigger("periodic")

    async def _pass(self, reason: str) -> list[str]:
        try:
            return await self.prune(reason)
        except Exception:  # a background pass: nobody else would see it
            logger.exception("Retention pass failed; the next one tries again")
            return []

    async def prune(self, reason: str) -> list[str]:
        """One pass; returns the clip_ids whose local file was deleted."""
        files = await asyncio.to_thread(self._spooled_files)
        pressure = _Pressure(
            total=sum(file.size for file in files),
            cap=self._config.max_local_size_bytes,
            min_free=self._config.min_free_bytes,
            free=await asyncio.to_thread(_free_bytes, files, self._work_dir),
            busy=sum(file.size for file in files if self._busy(file.clip.clip_id)),
        )
        pruned: list[str] = []
        if pressure.problem() is not None:
            pruned = await self._delete_oldest(files, pressure, reason)
        metrics.set_spool(pressure.total, over_limit=pressure.problem() is not None)
        await self._report(pressure.problem())
        return pruned

    async def _delete_oldest(
        self, files: list[_SpooledFile], pressure: _Pressure, reason: str
    ) -> list[str]:
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
            if not pressure.relieved_by(file) or self._busy(file.clip.clip_id):
                continue
            clip = file.clip
            await asyncio.to_thread(remove_local, clip)
            pressure.deleted(file)
            pruned.append(clip.clip_id)
            # A log record only: retention makes no database writes.
            logger.info(
                "Pruned local copy of %s (%d bytes, reason=%s)",
                clip.clip_id,
                file.size,
                reason,
                extra=log_extra(clip.clip_id, clip.camera_name, EventType.LOCAL_FILE_PRUNED),
            )
        return pruned

    async def _report(self, problem: str | None) -> None:
        """Tell a person once when the limits stop holding (again on the next pass if no
        sink took it), and log when they hold again."""
        self.problem = problem
        if problem is None:
            if self._reported:
                logger.info("The spool is within its limits again")
            self._reported = False
            return
        if self._reported:
            return
        message = f"clips are kept locally: {problem}; only clips already in storage may go"
        self._reported = await self._system_alert(
            SystemAlert(kind=SystemAlertKind.SPOOL_OVER_LIMIT, message=message, ts=utc_now())
        )

    def _spooled_files(self) -> list[_SpooledFile]:
        files = []
        for source in self._sources:
            for clip in source.spooled_clips():
                try:
                    stat = clip.local_path.stat()
                except FileNotFoundError:
                    continue
                files.append(_SpooledFile(clip, stat.st_size, stat.st_dev))
        return files


def _free_bytes(files: list[_SpooledFile], work_dir: Path) -> dict[int, int]:
    """Free bytes of each disk holding clips, and of the work folder's (sources record there
    too), by device."""
    folders = {file.device: file.clip.local_path.parent for file in files}
    with contextlib.suppress(OSError):
        folders.setdefault(work_dir.stat().st_dev, work_dir)
    free = {}
    for device, folder in folders.items():
        try:
            stats = os.statvfs(folder)
        except OSError:
            continue
        free[device] = stats.f_bavail * stats.f_frsize
    return free


def _eligible(state: ClipStateData | None) -> bool:
    return state is not None and state.is_uploaded and state.is_settled
