"""`dropbox` storage: clips uploaded with the official Dropbox SDK, run in worker threads.

Clips land at `{root}/{camera_name}/{clip_id}` (the pipeline's key under `root`) in overwrite
mode, so a repeated upload of the same clip is harmless. Files above `chunked_threshold_bytes`
go through an upload session in `chunk_size_bytes` pieces, so no request carries more than one
chunk. `view_url` is `web_url_prefix` + the `path_display` that Dropbox returns for the upload
(a link that needs the owner's login, not a public share link), so it costs no extra call.

Auth: a refresh token with the app key (and secret, unless the token came from PKCE), from
which the SDK fetches and renews short-lived access tokens; or a long-lived access token.
The SDK retries 5xx answers with backoff, sleeps the `Retry-After` of a 429, and refreshes an
expired access token once per call. Every SDK and network error leaves this module as a
`DropboxStorageError` (translated in `_translate`) with the original as its cause.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dropbox  # type: ignore[import-untyped]
import requests
from dropbox.dropbox_client import BadInputException  # type: ignore[import-untyped]
from dropbox.exceptions import (  # type: ignore[import-untyped]
    ApiError,
    AuthError,
    DropboxException,
    HttpError,
    RateLimitError,
)
from dropbox.files import CommitInfo, UploadSessionCursor, WriteMode  # type: ignore[import-untyped]
from pydantic import Field, JsonValue, field_validator, model_validator

from homesec.interfaces import PluginConfig
from homesec.models.enums import PluginType
from homesec.models.env import SecretEnv
from homesec.models.results import UploadOutcome
from homesec.plugins.registry import plugin
from homesec.plugins.storage.base import (
    SDKStorage,
    checked_key,
    json_document,
    replace_atomically,
)

URI_SCHEME = "dropbox:"
_MiB = 1024 * 1024
# Upload sessions take chunks in multiples of 4 MiB; one request carries at most 150 MiB.
_CHUNK_UNIT = 4 * _MiB
_MAX_REQUEST = 150 * _MiB


class DropboxStorageError(Exception):
    """A Dropbox call failed; `__cause__` holds the SDK's or the network's error."""


class DropboxStorageConfig(PluginConfig):
    root: str = Field(
        default="/homecam",
        description="Dropbox folder that receives the clips ('' for the root of an app folder)",
    )
    web_url_prefix: str = Field(
        default="https://www.dropbox.com/home",
        description="Prefix of view_url; the uploaded file's path_display is appended",
    )
    token_env: SecretEnv | None = Field(
        default=None, description="Env var with a long-lived access token (instead of refresh)"
    )
    refresh_token_env: SecretEnv | None = Field(
        default=None, description="Env var with the OAuth2 refresh token (recommended)"
    )
    app_key_env: SecretEnv | None = Field(
        default=None, description="Env var with the app key (needed with refresh_token_env)"
    )
    app_secret_env: SecretEnv | None = Field(
        default=None, description="Env var with the app secret (not needed for PKCE tokens)"
    )
    chunked_threshold_bytes: int = Field(
        default=8 * _MiB,
        ge=1,
        le=_MAX_REQUEST,
        description="Files larger than this are uploaded in chunks through an upload session",
    )
    chunk_size_bytes: int = Field(
        default=8 * _MiB,
        ge=_CHUNK_UNIT,
        le=148 * _MiB,
        description="Size of each upload-session chunk, a multiple of 4 MiB",
    )
    timeout_s: float = Field(default=100.0, gt=0, description="Socket timeout of each request")
    max_retries_on_error: int = Field(
        default=4, ge=0, description="SDK retries of a 5xx answer (exponential backoff)"
    )
    max_retries_on_rate_limit: int = Field(
        default=5, ge=0, description="SDK retries of a 429 answer, each after its Retry-After"
    )

    @field_validator("root")
    @classmethod
    def _folder_path(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and (not value.startswith("/") or ".." in value.split("/")):
            raise ValueError("must be an absolute Dropbox folder like /homecam, or ''")
        return value

    @field_validator("chunk_size_bytes")
    @classmethod
    def _whole_units(cls, value: int) -> int:
        if value % _CHUNK_UNIT:
            raise ValueError("must be a multiple of 4 MiB (4194304 bytes)")
        return value

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> DropboxStorageConfig:
        if (self.token_env is None) == (self.refresh_token_env is None):
            raise ValueError("set either token_env or refresh_token_env (with app_key_env)")
        if self.refresh_token_env is not None and self.app_key_env is None:
            raise ValueError("refresh_token_env needs app_key_env")
        return self


@plugin(PluginType.STORAGE, "dropbox", config=DropboxStorageConfig)
class DropboxStorage(SDKStorage):
    sdk_errors = (DropboxException, BadInputException, requests.RequestException)

    def __init__(self, config: DropboxStorageConfig) -> None:
        self._config = config
        self._client = _client(config)

    async def put(self, local_path: Path, dest_key: str) -> UploadOutcome:
        metadata = await self._run("upload", self._upload_file, local_path, self._path(dest_key))
        return self._outcome(metadata)

    async def put_json(self, obj: Mapping[str, JsonValue], dest_key: str) -> UploadOutcome:
        path = self._path(dest_key)
        metadata = await self._run("upload", self._upload_bytes, json_document(obj), path)
        return self._outcome(metadata)

    async def get(self, storage_uri: str, local_path: Path) -> None:
        await self._run("download", self._download, _path_of(storage_uri), local_path)

    async def exists(self, dest_key: str) -> bool:
        return await self._run("lookup", self._exists, self._path(dest_key))

    async def delete(self, dest_key: str) -> None:
        await self._run("delete", self._delete, self._path(dest_key))

    def _translate(self, action: str, exc: Exception) -> DropboxStorageError:
        match exc:
            case RateLimitError():
                reason = f"rate limited (retry after {exc.backoff} s) beyond the retries allowed"
            case AuthError():
                reason = f"not authorized ({exc.error}): check the token or the app key/secret"
            case ApiError() if _is_not_found(exc):
                reason = "no such file"
            case ApiError():
                reason = f"refused: {exc.error}"
            case HttpError():
                reason = f"HTTP {exc.status_code}: {exc.body}"
            case requests.RequestException():
                reason = f"network error: {exc}"
            case _:
                reason = str(exc) or type(exc).__name__
        return DropboxStorageError(f"Dropbox {action} failed: {reason}")

    def _path(self, dest_key: str) -> str:
        return f"{self._config.root}/{checked_key(dest_key)}"

    def _outcome(self, metadata: Any) -> UploadOutcome:
        path_display = str(metadata.path_display)
        view_url = self._config.web_url_prefix.rstrip("/") + quote(path_display)
        return UploadOutcome(storage_uri=URI_SCHEME + path_display, view_url=view_url)

    # --- worker-thread side

    def _upload_bytes(self, payload: bytes, path: str) -> Any:
        return self._client.files_upload(payload, path, mode=WriteMode.overwrite, mute=True)

    def _upload_file(self, local_path: Path, path: str) -> Any:
        size = local_path.stat().st_size
        if size <= self._config.chunked_threshold_bytes:
            return self._upload_bytes(local_path.read_bytes(), path)
        chunk_size = self._config.chunk_size_bytes
        with local_path.open("rb") as handle:
            started = self._client.files_upload_session_start(handle.read(chunk_size))
            cursor = UploadSessionCursor(session_id=started.session_id, offset=handle.tell())
            commit = CommitInfo(path=path, mode=WriteMode.overwrite, mute=True)
            while True:
                chunk = handle.read(chunk_size)
                if cursor.offset + len(chunk) >= size:
                    return self._client.files_upload_session_finish(chunk, cursor, commit)
                self._client.files_upload_session_append_v2(chunk, cursor)
                cursor.offset += len(chunk)

    def _download(self, path: str, local_path: Path) -> None:
        replace_atomically(local_path, lambda tmp: self._client.files_download_to_file(tmp, path))

    def _ping(self) -> object:
        return self._client.check_user("homesec")

    def _delete(self, path: str) -> None:
        self._found(self._client.files_delete_v2, path)

    def _exists(self, path: str) -> bool:
        return self._found(self._client.files_get_metadata, path)

    def _found(self, call: Callable[[str], object], path: str) -> bool:
        """`call(path)`; False when Dropbox has no such file."""
        try:
            call(path)
        except ApiError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True


def _client(config: DropboxStorageConfig) -> Any:
    def secret(env: SecretEnv | None) -> str | None:
        return env.value.get_secret_value() if env is not None else None

    # The config holds either an access token or a refresh token with the app key.
    return dropbox.Dropbox(
        oauth2_access_token=secret(config.token_env),
        oauth2_refresh_token=secret(config.refresh_token_env),
        app_key=secret(config.app_key_env),
        app_secret=secret(config.app_secret_env),
        max_retries_on_error=config.max_retries_on_error,
        max_retries_on_rate_limit=config.max_retries_on_rate_limit,
        timeout=config.timeout_s,
        user_agent="HomeSec",
    )


def _path_of(storage_uri: str) -> str:
    if not storage_uri.startswith(URI_SCHEME + "/"):
        raise ValueError(f"not a URI of this storage: {storage_uri!r}")
    return storage_uri.removeprefix(URI_SCHEME)


def _is_not_found(exc: ApiError) -> bool:
    # A lookup answers `path/not_found`, a delete `path_lookup/not_found`.
    error = exc.error
    for tag in ("path", "path_lookup"):
        if getattr(error, f"is_{tag}", lambda: False)():
            return bool(getattr(error, f"get_{tag}")().is_not_found())
    return False
