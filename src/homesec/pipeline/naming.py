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
from collections import OrderedDict
from pathlib import Path

from homesec.interfaces import StorageBackend
from homesec.models.clip import clip_id_for, parse_clip_id
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
        self._claimed: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

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
        """The path in `folder` a new clip of `camera_name` takes: `wanted` (a name that
        follows the clip_id rule) when it is free, else the first free name of its second.

        `in_place`: the file is already at `folder / wanted` (it is not a clip of its own).
        """
        named = parse_clip_id(wanted, camera_name) if wanted is not None else None
        if named is None:
            wanted = None
        else:
            unix_seconds, extension = named.unix_seconds, named.extension
        # One claim per camera at a time: two files of one second never get one name.
        async with self._locks.setdefault(camera_name, asyncio.Lock()):
            for name in _candidates(camera_name, unix_seconds, extension, wanted):
                path = folder / name
                itself = in_place and name == wanted
                if name in self._claimed or (not itself and await _exists(path)):
                    continue
                if await self._known(camera_name, name):
                    continue
                self._remember(name)
                return path
        raise AssertionError("unreachable: the candidates never end")

    async def _known(self, camera_name: str, clip_id: str) -> bool:
        """Whether the database or storage has a clip by this name (unknown counts as no)."""
        checks = []
        if self._repository is not None:
            checks.append(self._repository.has_clip(clip_id))
        if self._storage is not None:
            checks.append(self._storage.exists(f"{camera_name}/{clip_id}"))
        try:
            async with asyncio.timeout(self._check_timeout_s):
                answers = await asyncio.gather(*checks, return_exceptions=True)
        except TimeoutError:
            answers = [TimeoutError("no answer in time")]
        unknown = [a for a in answers if a is None or isinstance(a, BaseException)]
        if unknown:
            logger.warning(
                "Cannot tell whether %s was used before (%s); the local spool decides",
                clip_id,
                "; ".join(str(a) or type(a).__name__ for a in unknown if a is not None)
                or "database unreachable",
                extra={"camera_name": camera_name, "clip_id": clip_id},
            )
        return any(answer is True for answer in answers)

    def _remember(self, name: str) -> None:
        self._claimed[name] = None
        if len(self._claimed) > _CLAIMS_KEPT:
            self._claimed.popitem(last=False)


def _candidates(
    camera_name: str, unix_seconds: int, extension: str, wanted: str | None
) -> itertools.chain[str]:
    numbered = (clip_id_for(camera_name, unix_seconds, n, extension) for n in itertools.count(1))
    return itertools.chain([wanted] if wanted else [], numbered)


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)
