"""`local` storage: clips copied under a folder on this machine (a NAS mount, a second disk)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import Field, JsonValue

from homesec.interfaces import PluginConfig
from homesec.models.config import FolderPath
from homesec.models.enums import PluginType
from homesec.models.results import UploadOutcome
from homesec.plugins.registry import plugin
from homesec.plugins.storage.base import checked_key, json_document, replace_atomically


class LocalStorageConfig(PluginConfig):
    root: FolderPath = Field(description="Folder that receives the clips, created when missing")
    view_url_prefix: str | None = Field(
        default=None,
        description="Prefix of the link sent in alerts (key appended); default: a file:// URL",
    )


@plugin(PluginType.STORAGE, "local", config=LocalStorageConfig)
class LocalStorage:
    """Copies files under `root/{key}` atomically, so a repeated put is harmless."""

    def __init__(self, config: LocalStorageConfig) -> None:
        self._root = config.root.expanduser().resolve()
        self._view_url_prefix = config.view_url_prefix

    async def put(self, local_path: Path, dest_key: str) -> UploadOutcome:
        target = self._target(dest_key)
        await asyncio.to_thread(replace_atomically, target, partial(shutil.copyfile, local_path))
        return self._outcome(target, dest_key)

    async def get(self, storage_uri: str, local_path: Path) -> None:
        source = self._path_of(storage_uri)
        await asyncio.to_thread(replace_atomically, local_path, partial(shutil.copyfile, source))

    async def exists(self, dest_key: str) -> bool:
        return await asyncio.to_thread(self._target(dest_key).is_file)

    async def put_json(self, obj: Mapping[str, JsonValue], dest_key: str) -> UploadOutcome:
        target = self._target(dest_key)
        payload = json_document(obj)
        await asyncio.to_thread(
            replace_atomically, target, lambda tmp: Path(tmp).write_bytes(payload)
        )
        return self._outcome(target, dest_key)

    async def delete(self, dest_key: str) -> None:
        await asyncio.to_thread(self._target(dest_key).unlink, missing_ok=True)

    async def ping(self) -> bool:
        return await asyncio.to_thread(_writable_dir, self._root)

    async def start(self) -> None:
        """Nothing to start: folders are made as clips are written."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def _target(self, dest_key: str) -> Path:
        return self._root.joinpath(*checked_key(dest_key).parts)

    def _path_of(self, storage_uri: str) -> Path:
        parsed = urlparse(storage_uri)
        path = Path(unquote(parsed.path)).resolve()
        if parsed.scheme != "file" or not path.is_relative_to(self._root):
            raise ValueError(f"not a URI of this storage: {storage_uri!r}")
        return path

    def _outcome(self, target: Path, dest_key: str) -> UploadOutcome:
        view_url = (
            f"{self._view_url_prefix}{dest_key}" if self._view_url_prefix else target.as_uri()
        )
        return UploadOutcome(storage_uri=target.as_uri(), view_url=view_url)


def _writable_dir(root: Path) -> bool:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK)
