"""`local_folder` source: a watched folder that cameras or scripts drop finished clips into.

A file counts as finished when its size and mtime stay unchanged for `settle_s`, so a file
still being written is never picked up. Files handed on are listed in a local manifest
(`.homesec_state.json`), so this source keeps its own truth even when the database is down.
Every new file is named by the service's `ClipNamer`: it keeps its name when that follows
the clip_id rule and no other clip has it, else it is renamed (its second from the name, or
the file's mtime; `_2`, `_3`... when taken). An empty file, or one over
`max_file_size_bytes`, is not taken: it is reported once (until it changes) and left alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from homesec.errors import CheckFailed
from homesec.interfaces import SelfCheck, SourceConfig
from homesec.models.clip import VIDEO_EXTENSIONS, Clip
from homesec.models.config import FolderPath
from homesec.models.enums import PluginType
from homesec.plugins.registry import plugin
from homesec.plugins.sources.base import SourceBase

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".homesec_state.json"
BACKEND = "local_folder"


class LocalFolderConfig(SourceConfig):
    watch_dir: FolderPath = Field(description="Folder watched for new clips, created when missing")
    poll_interval_s: float = Field(default=1.0, gt=0, description="Seconds between scans")
    settle_s: float = Field(
        default=1.0, ge=0, description="A file unchanged this long is considered finished"
    )
    max_file_size_bytes: int = Field(
        default=1_073_741_824,
        gt=0,
        description="Larger files are not taken (reported once): a stray huge file must not "
        "push every other clip out of the spool",
    )


@dataclass(frozen=True)
class _Finished:
    """A file that stopped changing: a clip to name and hand on."""

    path: Path
    mtime: float


@plugin(PluginType.SOURCE, BACKEND, config=LocalFolderConfig)
class LocalFolderSource(SourceBase[LocalFolderConfig]):
    backend = BACKEND

    def __init__(self, config: LocalFolderConfig) -> None:
        super().__init__(config)
        self._dir = config.watch_dir.expanduser().resolve()
        self._manifest = _Manifest(self._dir / MANIFEST_NAME)
        self._seen: dict[str, Signature] = {}
        self._refused: dict[str, Signature] = {}  # name -> signature, reported once
        self._scan_failed = False

    async def _open(self) -> None:
        await asyncio.to_thread(self._manifest.load)  # creates the folder too
        self._heartbeat = time.time()  # the folder is there and readable: a sign of life
        self._task = asyncio.create_task(self._watch(), name=f"local_folder:{self.camera_name}")

    def is_healthy(self) -> bool:
        recent = time.time() - self._heartbeat < max(5 * self._config.poll_interval_s, 10.0)
        return self._running and recent and not self._scan_failed

    def self_checks(self) -> list[SelfCheck]:
        return [SelfCheck("folder writable", self._check_folder)]

    async def _check_folder(self, timeout_s: float) -> str:
        # Written to: the manifest lives there, and renamed clips too.
        try:
            await asyncio.to_thread(_write_probe, self._dir)
        except OSError as exc:
            raise CheckFailed(
                f"cannot write in {self._dir} ({exc.strerror or exc}): fix its permissions "
                "or choose another watch_dir",
                exc,
            ) from exc
        return f"{self._dir} is writable"

    def spooled_clips(self) -> list[Clip]:
        # Recovery asks before start(): read the manifest left by the previous run.
        self._manifest.ensure_loaded()
        paths = [self._dir / name for name in self._manifest.names()]
        return [self._clip_for(path) for path in paths if path.is_file()]

    async def _watch(self) -> None:
        while True:
            try:
                finished = await asyncio.to_thread(self._scan)
                for file in finished:
                    self._hand_on(await self._admit(file))
                self._scan_failed = False
            except OSError:  # the folder, or a file being taken (left for the next scan)
                logger.exception("Cannot scan %s", self._dir, extra=self._log_extra)
                self._scan_failed = True
            self._heartbeat = time.time()
            await asyncio.sleep(self._config.poll_interval_s)

    def _scan(self) -> list[_Finished]:
        finished: list[_Finished] = []
        present: set[str] = set()
        now = time.time()
        with os.scandir(self._dir) as entries:
            for entry in entries:
                if not self._is_candidate(entry):
                    continue
                stat = entry.stat(follow_symlinks=False)
                signature = (stat.st_size, stat.st_mtime_ns)
                if self._manifest.contains(entry.name, signature):
                    continue  # handed on already
                present.add(entry.name)
                settled = self._seen.get(entry.name) == signature
                self._seen[entry.name] = signature
                if not settled or now - stat.st_mtime < self._config.settle_s:
                    continue
                if self._refusal(entry.name, signature) is None:
                    finished.append(_Finished(Path(entry.path), stat.st_mtime))
        self._seen = {name: sig for name, sig in self._seen.items() if name in present}
        self._refused = {name: sig for name, sig in self._refused.items() if name in present}
        return finished

    def _refusal(self, name: str, signature: Signature) -> str | None:
        """Why a finished file is not taken (logged once while it stays as it is), or None."""
        size = signature[0]
        if size == 0:
            why = "it is empty"
        elif size > self._config.max_file_size_bytes:
            why = f"{size} bytes is over max_file_size_bytes ({self._config.max_file_size_bytes})"
        else:
            return None
        if self._refused.get(name) != signature:
            self._refused[name] = signature
            logger.warning("Not taking %r from %s: %s", name, self._dir, why, extra=self._log_extra)
        return why

    def _is_candidate(self, entry: os.DirEntry[str]) -> bool:
        return (
            not entry.name.startswith(".")
            and entry.is_file(follow_symlinks=False)
            and Path(entry.name).suffix.lower() in VIDEO_EXTENSIONS
        )

    async def _admit(self, file: _Finished) -> Clip:
        """Name the finished file as a new clip (renamed when its name is not free)."""
        path = file.path
        target = await self._names.claim(
            self.camera_name,
            int(file.mtime),
            path.suffix,
            self._dir,
            wanted=path.name,
            in_place=True,
        )
        if target != path:
            await asyncio.to_thread(path.rename, target)
            logger.info(
                "Renamed %r to %s (a new clip gets a clip_id of its own)",
                path.name,
                target.name,
                extra={"camera_name": self.camera_name, "clip_id": target.name},
            )
        self._seen.pop(path.name, None)
        stat = await asyncio.to_thread(target.stat)
        await asyncio.to_thread(self._manifest.add, target.name, (stat.st_size, stat.st_mtime_ns))
        return await asyncio.to_thread(self._clip_for, target)


Signature = tuple[int, int]
"""A file's size and mtime (ns): a new file under a name handed on before differs."""


class _Manifest:
    """The files already handed on (name and signature), persisted atomically next to them.

    A name with another signature is a new file: a clip whose local copy was pruned may be
    followed by a new clip under the same name (a camera whose clock went back).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._loaded = False
        self._files: dict[str, Signature | None] = {}
        # Scans run in a worker thread while recovery and retention read the names.
        self._lock = threading.Lock()

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    def load(self) -> None:
        self._loaded = True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._files = _parse_manifest(json.loads(self._path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            self._files = {}
        except (OSError, ValueError):
            logger.exception("Unreadable manifest %s; starting a new one", self._path)
            self._files = {}
        # Forget files that are gone (pruned by retention or removed by the user).
        folder = self._path.parent
        self._files = {name: sig for name, sig in self._files.items() if (folder / name).exists()}
        self._save()

    def contains(self, name: str, signature: Signature) -> bool:
        """Whether this very file (not only its name) was handed on."""
        with self._lock:
            return name in self._files and self._files[name] in (None, signature)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    def add(self, name: str, signature: Signature) -> None:
        with self._lock:
            self._files[name] = signature
        self._save()

    def _save(self) -> None:
        with self._lock:
            payload = json.dumps(
                {
                    "processed": sorted(self._files),
                    "signatures": {n: sig for n, sig in self._files.items() if sig is not None},
                }
            )
            tmp = self._path.with_name(self._path.name + ".tmp")
            tmp.write_text(payload, encoding="utf-8")
            tmp.replace(self._path)


def _parse_manifest(raw: object) -> dict[str, Signature | None]:
    if not isinstance(raw, dict):
        return {}
    names = [name for name in raw.get("processed", []) if isinstance(name, str)]
    signatures = raw.get("signatures", {})
    files: dict[str, Signature | None] = dict.fromkeys(names)
    if isinstance(signatures, dict):
        for name, sig in signatures.items():
            match sig:
                case [int(size), int(mtime_ns)] if name in files:
                    files[name] = (size, mtime_ns)
    return files


def _write_probe(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".homesec-doctor-"):
        pass
