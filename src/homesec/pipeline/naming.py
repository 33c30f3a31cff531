"""Clip identity: every new clip gets a clip_id that no other clip has, or ever had.

A clip_id is `{camera}_{unix_seconds}[_{n}]{ext}`. A name is free for a new clip when no
clip in flight claimed it, no file in the spool folder has it, the state database has no
clip by it and storage holds no object under its key. Every source, and `homesec process`,
names its new files here: two files of one second, two uploads of one name, or a camera
whose clock went back (after a power cut) each become a clip of their own, never an old
clip's repeat. What the database or storage cannot answer in time (down, slow) is not
known: the spool and the names this process gave out still decide, and the log says so.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Iterator
from pathlib import Path

from cachetools import FIFOCache

from homesec.interfaces import StorageBackend
from homesec.models.clip import clip_id_for, parse_clip_id
from homesec.pipeline.stages import log_extra
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

_CLAIMS_KEPT = 10_000  # far more than clips in flight at once
_CHECK_TIMEOUT_S = 3.0


class ClipNames:
    """Claims clip_ids for new clips (the one `ClipNamer` of the service)."""

    def __init__(
        self,
        repository: ClipRepository | None = None,
        storage: StorageBackend | None = None,
        *,
        check_timeout_s: float = _CHECK_TIMEOUT_S,
    ) -> None:
        self._repository = repository
        self._storage = storage
        self._check_timeout_s = check_timeout_s
        self._claimed: FIFOCache[str, None] = FIFOCache(_CLAIMS_KEPT)
        self._lock = asyncio.Lock()

    async def claim(
        self,
        camera_name: str,
        unix_seconds: int,
        extension: str,
        folder: Path,
        *,
        wanted: str | None = None,
        in_place: bool = False,
    ) -> Path:
        """`ClipNamer.claim`; a `wanted` name that breaks the clip_id rule is not used."""
        named = parse_clip_id(wanted, camera_name) if wanted is not None else None
        if named is None:
            wanted = None
        else:
            unix_seconds, extension = named.unix_seconds, named.extension
        candidates = _candidates(camera_name, unix_seconds, extension, wanted)
        while True:
            # Reserved at once, asked about after: claims never wait on each other's checks.
            path = await self._reserve_next(candidates, folder, wanted if in_place else None)
            if not await self._known(camera_name, path.name):
                return path

    async def _reserve_next(
        self, candidates: Iterator[str], folder: Path, itself: str | None
    ) -> Path:
        """The next candidate no clip in flight claimed and no file in `folder` has (but
        `itself`, the file being named), claimed from now on."""
        async with self._lock:
            for name in candidates:
                path = folder / name
                if name in self._claimed or (name != itself and await _exists(path)):
                    continue
                self._claimed[name] = None
                return path
        raise AssertionError("unreachable: the candidates never end")

    async def _known(self, camera_name: str, clip_id: str) -> bool:
        """Whether the database or storage has a clip by this name. Each is asked on its own
        (a slow one never hides the other's answer); one that cannot say counts as no."""
        checks: list[Awaitable[bool | None]] = []
        if self._repository is not None:
            checks.append(self._repository.has_clip(clip_id))
        if self._storage is not None:
            checks.append(self._storage.exists(f"{camera_name}/{clip_id}"))
        answers = await asyncio.gather(*(self._bounded(check) for check in checks))
        unknown = [answer for answer in answers if isinstance(answer, str)]
        if True in answers:
            return True
        if unknown:
            logger.warning(
                "Cannot tell whether %s was used before (%s); the local spool decides",
                clip_id,
                "; ".join(unknown),
                extra=log_extra(clip_id, camera_name),
            )
        return False

    async def _bounded(self, check: Awaitable[bool | None]) -> bool | str:
        """The check's answer, or why there is none."""
        try:
            async with asyncio.timeout(self._check_timeout_s):
                answer = await check
        except TimeoutError:
            return "no answer in time"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return "database unreachable" if answer is None else answer


def _candidates(
    camera_name: str, unix_seconds: int, extension: str, wanted: str | None
) -> Iterator[str]:
    numbered = (clip_id_for(camera_name, unix_seconds, n, extension) for n in itertools.count(1))
    return itertools.chain([wanted] if wanted else [], numbered)


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)
