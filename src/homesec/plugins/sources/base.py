"""What every clip source shares: its camera, callbacks, namer, background task and clip records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, ClassVar, Generic, Literal, Self, TypeVar

from homesec.interfaces import ClipCallback, ClipNamer, SourceConfig
from homesec.models.clip import Clip, parse_clip_id
from homesec.models.enums import EventType

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=SourceConfig)
ItemT = TypeVar("ItemT")


class SourceBase(ABC, Generic[ConfigT]):
    """A source of clips named by the service's `ClipNamer`; subclasses implement `_open`."""

    backend: ClassVar[str]

    def __init__(self, config: ConfigT) -> None:
        self._config = config
        self._callbacks: list[ClipCallback] = []
        self._namer: ClipNamer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._heartbeat = 0.0

    @classmethod
    def create(cls, config: ConfigT) -> Self:
        return cls(config)

    @property
    def camera_name(self) -> str:
        return self._config.camera_name

    def register_callback(self, callback: ClipCallback) -> None:
        self._callbacks.append(callback)

    def use_namer(self, namer: ClipNamer) -> None:
        self._namer = namer

    async def start(self) -> None:
        if self._namer is None:
            raise RuntimeError("use_namer() must be called before start()")
        self._loop = asyncio.get_running_loop()
        await self._open()

    @abstractmethod
    async def _open(self) -> None:
        """Start the source's own work (the namer is there and the loop known)."""

    async def aclose(self) -> None:
        await self._cancel_task()

    def last_heartbeat(self) -> float:
        return self._heartbeat

    @property
    def _log_extra(self) -> dict[str, str]:
        return {"camera_name": self.camera_name}

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _cancel_task(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    @property
    def _names(self) -> ClipNamer:
        assert self._namer is not None  # start() makes sure
        return self._namer

    def _on_loop(self, call: Callable[[ItemT], None], item: ItemT) -> bool:
        """Have the event loop's thread run `call(item)`; False when the loop is gone."""
        if self._loop is None:
            return False
        try:
            self._loop.call_soon_threadsafe(call, item)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _hand_on(self, clip: Clip, note: str = "") -> None:
        """Give a new clip to every callback (on the event loop's thread)."""
        logger.info(
            "New clip %s (%.1f s)%s",
            clip.clip_id,
            clip.duration_s,
            note,
            extra={
                "event_type": EventType.CLIP_RECEIVED,
                "camera_name": clip.camera_name,
                "clip_id": clip.clip_id,
            },
        )
        for callback in self._callbacks:
            callback(clip)

    def _clips_in(self, folder: Path) -> list[Clip]:
        """The files in `folder` whose names follow the clip_id rule for this camera."""
        if not folder.is_dir():
            return []
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
        return [
            self._clip_for(folder / name)
            for name in sorted(names)
            if parse_clip_id(name, self.camera_name) is not None
        ]

    def _clip_for(self, path: Path) -> Clip:
        """A spooled file's clip: from the second in its name (else its mtime) to its mtime."""
        name = parse_clip_id(path.name, self.camera_name)
        end = path.stat().st_mtime
        start = float(name.unix_seconds) if name else end
        return clip_record(path, self.camera_name, self.backend, start, end - start)


def clip_record(path: Path, camera_name: str, backend: str, start: float, duration: float) -> Clip:
    """The `Clip` of a finished file (times in unix seconds; a negative duration counts as 0)."""
    duration = max(0.0, duration)
    return Clip(
        clip_id=path.name,
        camera_name=camera_name,
        local_path=path,
        start_ts=datetime.fromtimestamp(start, UTC),
        end_ts=datetime.fromtimestamp(start + duration, UTC),
        duration_s=duration,
        source_backend=backend,
    )


_WriteMode = Literal["wb", "xb"]


async def spool_stream(
    chunks: AsyncIterator[bytes], part: Path, max_bytes: int, *, mode: _WriteMode = "wb"
) -> int | None:
    """Write `chunks` to `part` off the event loop and sync it to disk (a clip handed on or
    answered for must survive a crash); its size, or None once it is over `max_bytes`
    (writing stops there; the caller removes the part)."""
    file = await asyncio.to_thread(part.open, mode)
    try:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                return None
            await asyncio.to_thread(file.write, chunk)
        await asyncio.to_thread(_sync, file)
    finally:
        file.close()
    return size


def _sync(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
