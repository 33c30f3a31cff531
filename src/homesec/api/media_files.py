"""Finds the file behind a clip's video or snapshot: on local disk, else fetched from storage.

A clip still in the local spool is served from there. Once retention removed it, the copy in
the storage backend is fetched with `StorageBackend.get` into a cache folder: a `<video>` tag
asks for many byte ranges of one file, and each must not download the clip again. The cache
keeps the most recently used files (bounded), fetches each file once however many requests
wait for it, and remembers briefly which snapshots storage does not have.

The snapshot (`models.clip.snapshot_name`) lies next to the clip locally; in storage it is
at the state's `snapshot_uri`, or next to the clip for states written before that existed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from functools import partial
from pathlib import Path

from cachetools import LRUCache, TTLCache

from homesec.interfaces import StorageBackend
from homesec.models.clip import VIDEO_EXTENSIONS, snapshot_name
from homesec.models.state import ClipStateData
from homesec.single_flight import SingleFlight

logger = logging.getLogger(__name__)

_MISSING_TTL_S = 60.0
_MISSING_KEPT = 10_000


class _CachedFiles(LRUCache[str, Path]):
    """The fetched files by name, the least recently used deleted beyond the bound."""

    def popitem(self) -> tuple[str, Path]:
        name, oldest = super().popitem()
        # A response still streaming it keeps its open file; Linux frees it afterwards.
        oldest.unlink(missing_ok=True)
        return name, oldest


class MediaUnavailableError(Exception):
    """The file is not on local disk and storage could not provide it."""


class MediaFiles:
    def __init__(self, storage: StorageBackend, cache_dir: Path, max_cached: int = 16) -> None:
        self._storage = storage
        self._cache_dir = cache_dir
        self._cached = _CachedFiles(max_cached)
        self._fetching: SingleFlight[str, Path] = SingleFlight()
        # Snapshots storage does not have, not asked for again for a while.
        self._missing: TTLCache[str, None] = TTLCache(_MISSING_KEPT, _MISSING_TTL_S)

    async def video(self, state: ClipStateData) -> Path | None:
        """The clip's video file; None when it exists nowhere we know of.

        Raises MediaUnavailableError when only storage has it and storage fails.
        """
        local = Path(state.local_path)
        if local.suffix.lower() not in VIDEO_EXTENSIONS:
            return None
        if await asyncio.to_thread(local.is_file):
            return local
        if state.storage_uri is None:
            return None
        return await self._fetch(state.clip_id, state.storage_uri)

    async def snapshot(self, state: ClipStateData) -> Path | None:
        """The clip's snapshot JPEG; None when there is none (yet), locally or in storage."""
        name = snapshot_name(state.clip_id)
        local = Path(state.local_path).with_name(name)
        if await asyncio.to_thread(local.is_file):
            return local
        uri = state.snapshot_uri
        if uri is None and state.storage_uri is not None:
            uri = state.storage_uri.rsplit("/", 1)[0] + "/" + name
        if uri is None:
            return None
        if uri in self._missing:
            return None
        try:
            return await self._fetch(name, uri)
        except MediaUnavailableError:
            self._missing[uri] = None
            return None

    def forget(self, state: ClipStateData) -> None:
        """Drop the cached copies of a deleted clip's media."""
        for name in (state.clip_id, snapshot_name(state.clip_id)):
            cached = self._cached.pop(name, None)
            if cached is not None:
                cached.unlink(missing_ok=True)

    def close(self) -> None:
        self._fetching.cancel_all()
        shutil.rmtree(self._cache_dir, ignore_errors=True)

    async def _fetch(self, name: str, storage_uri: str) -> Path:
        cached = self._cached.get(name)
        if cached is not None and cached.is_file():
            return cached
        # One client hanging up does not cancel the download others wait for.
        download = partial(self._download, name, storage_uri)
        return await self._fetching.call(name, download, name=f"media:{name}")

    async def _download(self, name: str, storage_uri: str) -> Path:
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        target = self._cache_dir / name
        part = self._cache_dir / f".{uuid.uuid4().hex}.part"
        try:
            await self._storage.get(storage_uri, part)
            part.replace(target)
        except Exception as exc:
            part.unlink(missing_ok=True)
            logger.info("Could not fetch %s from storage: %s", name, exc)
            raise MediaUnavailableError(name) from exc
        self._cached[name] = target
        return target
