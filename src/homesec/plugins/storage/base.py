"""What the storage backends share: key checks, JSON documents, atomic files, SDK calls."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, TypeVar

from pydantic import JsonValue

T = TypeVar("T")


def checked_key(dest_key: str) -> PurePosixPath:
    """`dest_key` as a path that cannot leave the store's root; raises ValueError."""
    key = PurePosixPath(dest_key)
    if key.is_absolute() or ".." in key.parts or not key.parts:
        raise ValueError(f"storage key must be a relative path inside root: {dest_key!r}")
    return key


def json_document(obj: Mapping[str, JsonValue]) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True).encode()


def replace_atomically(target: Path, write: Callable[[str], object]) -> None:
    """`write` a temporary file beside `target`, then rename it: never a half-written target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        Path(tmp).replace(target)
    finally:
        Path(tmp).unlink(missing_ok=True)


class SDKStorage(ABC):
    """A backend over a blocking SDK client: calls in worker threads, errors translated once."""

    sdk_errors: ClassVar[tuple[type[Exception], ...]]
    _client: Any

    @abstractmethod
    def _translate(self, action: str, exc: Exception) -> Exception:
        """The one place where the SDK's and the network's errors become the plugin's."""

    @abstractmethod
    def _ping(self) -> object:
        """A cheap call that succeeds when the store is reachable with our credentials."""

    async def _run(self, action: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except self.sdk_errors as exc:
            raise self._translate(action, exc) from exc

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(self._ping)
        except self.sdk_errors:
            return False
        return True

    async def start(self) -> None:
        """Nothing to start: the SDK connects on the first call."""
        return None

    async def aclose(self) -> None:
        self._client.close()
