"""`local_folder` source: a watched folder that cameras or scripts drop finished clips into.

A file counts as finished when its size and mtime stay unchanged for `settle_s`, so a file
still being written is never picked up. Files handed on are listed in a local manifest
(`.homesec_state.json`), so this source keeps its own truth even when the database is down.
A file whose name does not follow the clip_id rule is renamed to it (upload time, `_2` on
collision).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from homesec.interfaces import ClipCallback, SourceConfig
from homesec.models.clip import VIDEO_EXTENSIONS, Clip, free_clip_path, parse_clip_id
from homesec.models.config import FolderPath
from homesec.models.enums import EventType, PluginType
from homesec.plugins.registry import plugin

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".homesec_state.json"
BACKEND = "local_folder"


class LocalFolderConfig(SourceConfig):
    watch_dir: FolderPath = Field(description="Folder watched for new clips, created when missing")
    poll_interval_s: float = Field(default=1.0, gt=0, description="Seconds between scans")
    settle_s: float = Field(
        default=1.0, ge=0, description="A file unchanged this long is considered finished"
    )


@plugin(PluginType.SOURCE, BACKEND, config=LocalFolderConfig)
class LocalFolderSource:
    def __init__(self, config: LocalFolderConfig) -> None:
        self._config = config
        self._dir = config.watch_dir.expanduser().resolve()
        self._manifest = _Manifest(self._dir / MANIFEST_NAME)
        self._callbacks: list[ClipCallback] = []
        self._seen: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_scan = 0.0
        self._scan_failed = False

    @classmethod
    def create(cls, config: LocalFolderConfig) -> LocalFolderSource:
        return cls(config)

    @property
    def camera_name(self) -> str:
        return self._config.camera_name

    def register_callback(self, callback: ClipCallback) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)
        self._last_scan = time.time()  # the folder is there and readable: a sign of life
        self._task = asyncio.create_task(self._watch(), name=f"local_folder:{self.camera_name}")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def is_healthy(self) -> bool:
        recent = time.time() - self._last_scan < max(5 * self._config.poll_interval_s, 10.0)
        return self._task is not None and not self._task.done() and recent and not self._scan_failed

    def last_heartbeat(self) -> float:
        return self._last_scan

    def spooled_clips(self) -> list[Clip]:
        # Recovery asks before start(): read the manifest left by the previous run.
        self._manifest.ensure_loaded()
        clips = []
        for name in self._manifest.names():
            path = self._dir / name
            if path.is_file():
                clips.append(self._clip_for(path))
        return clips

    def _prepare(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._manifest.load()

    async def _watch(self) -> None:
        while True:
            try:
                finished = await asyncio.to_thread(self._scan)
                self._scan_failed = False
            except OSError:
                logger.exception(
                    "Cannot scan %s", self._dir, extra={"camera_name": self.camera_name}
                )
                finished, self._scan_failed = [], True
            self._last_scan = time.time()
            for clip in finished:
                self._hand_on(clip)
            await asyncio.sleep(self._config.poll_interval_s)

    def _scan(self) -> list[Clip]:
        finished: list[Clip] = []
        present: set[str] = set()
        now = time.time()
        with os.scandir(self._dir) as entries:
            for entry in entries:
                if not self._is_candidate(entry):
                    continue
                present.add(entry.name)
                stat = entry.stat(follow_symlinks=False)
                signature = (stat.st_size, stat.st_mtime_ns)
                settled = self._seen.get(entry.name) == signature
                self._seen[entry.name] = signature
                if settled and stat.st_size > 0 and now - stat.st_mtime >= self._config.settle_s:
                    finished.append(self._finish(Path(entry.path), stat.st_mtime))
        self._seen = {name: sig for name, sig in self._seen.items() if name in present}
        return finished

    def _is_candidate(self, entry: os.DirEntry[str]) -> bool:
        return (
            not entry.name.startswith(".")
            and entry.is_file(follow_symlinks=False)
            and Path(entry.name).suffix.lower() in VIDEO_EXTENSIONS
            and not self._manifest.contains(entry.name)
        )

    def _finish(self, path: Path, mtime: float) -> Clip:
        if parse_clip_id(path.name, self.camera_name) is None:
            target = free_clip_path(self._dir, self.camera_name, int(mtime), path.suffix)
            path.rename(target)
            logger.info(
                "Renamed %r to %s (clip_id rule)",
                path.name,
                target.name,
                extra={"camera_name": self.camera_name, "clip_id": target.name},
            )
            path = target
        self._seen.pop(path.name, None)
        self._manifest.add(path.name)
        return self._clip_for(path)

    def _clip_for(self, path: Path) -> Clip:
        name = parse_clip_id(path.name, self.camera_name)
        end = path.stat().st_mtime
        start = float(name.unix_seconds) if name else end
        return Clip(
            clip_id=path.name,
            camera_name=self.camera_name,
            local_path=path,
            start_ts=datetime.fromtimestamp(start, UTC),
            end_ts=datetime.fromtimestamp(max(start, end), UTC),
            duration_s=max(0.0, end - start),
            source_backend=BACKEND,
        )

    def _hand_on(self, clip: Clip) -> None:
        logger.info(
            "New clip %s",
            clip.clip_id,
            extra={
                "event_type": EventType.CLIP_RECEIVED,
                "camera_name": clip.camera_name,
                "clip_id": clip.clip_id,
            },
        )
        for callback in self._callbacks:
            callback(clip)


class _Manifest:
    """The names of files already handed on, persisted atomically next to the clips."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._loaded = False
        self._names: set[str] = set()
        # Scans run in a worker thread while recovery and retention read the names.
        self._lock = threading.Lock()

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    def load(self) -> None:
        self._loaded = True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
            names = raw.get("processed", []) if isinstance(raw, dict) else []
            self._names = {name for name in names if isinstance(name, str)}
        except FileNotFoundError:
            self._names = set()
        except (OSError, ValueError):
            logger.exception("Unreadable manifest %s; starting a new one", self._path)
            self._names = set()
        # Forget files that are gone (pruned by retention or removed by the user).
        self._names = {name for name in self._names if (self._path.parent / name).exists()}
        self._save()

    def contains(self, name: str) -> bool:
        with self._lock:
            return name in self._names

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._names)

    def add(self, name: str) -> None:
        with self._lock:
            self._names.add(name)
        self._save()

    def _save(self) -> None:
        with self._lock:
            payload = json.dumps({"processed": sorted(self._names)})
            tmp = self._path.with_name(self._path.name + ".tmp")
            tmp.write_text(payload, encoding="utf-8")
            tmp.replace(self._path)
