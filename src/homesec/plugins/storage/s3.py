"""`s3` storage: Amazon S3 and S3-compatible stores (MinIO, Backblaze B2, Cloudflare R2,
Wasabi) through boto3, run in worker threads.

Clips land at `{prefix}{camera_name}/{clip_id}` in `bucket`; writing a key again replaces it,
so repeated uploads are harmless. boto3's transfer manager switches to a multipart upload
above `multipart_threshold_bytes` (parts sent in parallel). Server-side encryption and the
storage class apply to every object written. `view_url` is a presigned GET URL (computed
locally, valid `presign_expires_s`), `view_url_prefix` + key (a public bucket or a CDN), or
nothing. Credentials come from the env vars named in the config, or else from boto3's
default chain (environment, shared files, instance roles). Every boto3 error leaves this
module as an `S3StorageError` (translated in `_translate`) with the original as its cause.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
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

_MiB = 1024 * 1024
_MIN_PART = 5 * _MiB  # S3's smallest multipart part (all but the last)
_MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's longest presigned lifetime
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# Uploads run at once (the pipeline's upload_workers) times parts in flight per upload.
_POOL_CONNECTIONS = 64


class S3StorageError(Exception):
    """An S3 call failed; `__cause__` holds boto3's error."""


class S3StorageConfig(PluginConfig):
    bucket: str = Field(min_length=3, max_length=63, description="Bucket that receives the clips")
    prefix: str = Field(default="", description="Key prefix, e.g. 'homecam/' ('' for none)")
    region: str | None = Field(default=None, description="Region (default: boto3's own lookup)")
    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, B2, R2, Wasabi); unset for AWS",
    )
    addressing_style: Literal["auto", "virtual", "path"] = Field(
        default="auto", description="Bucket in the host name or in the path (MinIO: path)"
    )
    access_key_id_env: SecretEnv | None = Field(
        default=None, description="Env var with the access key id (unset: default AWS chain)"
    )
    secret_access_key_env: SecretEnv | None = Field(
        default=None, description="Env var with the secret access key"
    )
    session_token_env: SecretEnv | None = Field(
        default=None, description="Env var with a session token (temporary credentials)"
    )
    server_side_encryption: Literal["AES256", "aws:kms"] | None = Field(
        default=None, description="Server-side encryption of every object written"
    )
    sse_kms_key_id: str | None = Field(
        default=None, description="KMS key for aws:kms (default: the bucket's AWS-managed key)"
    )
    storage_class: str | None = Field(
        default=None, description="Storage class of every object, e.g. STANDARD_IA"
    )
    view_url: Literal["presigned", "prefix", "none"] = Field(
        default="presigned",
        description="Link in alerts: a presigned GET URL, view_url_prefix + key, or none",
    )
    view_url_prefix: str | None = Field(
        default=None, description="Prefix of the link when view_url is 'prefix' (key appended)"
    )
    presign_expires_s: int = Field(
        default=_MAX_PRESIGN_S,
        ge=1,
        le=_MAX_PRESIGN_S,
        description="Lifetime of a presigned link, seconds (at most 7 days)",
    )
    multipart_threshold_bytes: int = Field(
        default=8 * _MiB, ge=_MIN_PART, description="Files larger than this go up in parts"
    )
    multipart_chunk_size_bytes: int = Field(
        default=8 * _MiB, ge=_MIN_PART, description="Size of each part of a multipart upload"
    )
    max_concurrency: int = Field(
        default=4, ge=1, le=16, description="Parts of one multipart upload sent at once"
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Connection timeout")
    read_timeout_s: float = Field(default=60.0, gt=0, description="Socket read timeout")
    max_attempts: int = Field(
        default=5, ge=1, description="Tries per request, first included (boto3 'standard' mode)"
    )

    @field_validator("prefix")
    @classmethod
    def _folder_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if ".." in value.split("/"):
            raise ValueError("must not contain '..'")
        return f"{value}/" if value else ""

    @model_validator(mode="after")
    def _consistent(self) -> S3StorageConfig:
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            raise ValueError("set both access_key_id_env and secret_access_key_env, or neither")
        if (self.view_url == "prefix") != (self.view_url_prefix is not None):
            raise ValueError("view_url_prefix is needed with, and only with, view_url: prefix")
        if self.sse_kms_key_id is not None and self.server_side_encryption != "aws:kms":
            raise ValueError("sse_kms_key_id needs server_side_encryption: aws:kms")
        return self


@plugin(PluginType.STORAGE, "s3", config=S3StorageConfig)
class S3Storage(SDKStorage):
    sdk_errors = (ClientError, BotoCoreError, Boto3Error)

    def __init__(self, config: S3StorageConfig) -> None:
        self._config = config
        self._bucket = config.bucket
        self._client = _client(config)
        self._transfer = TransferConfig(
            multipart_threshold=config.multipart_threshold_bytes,
            multipart_chunksize=config.multipart_chunk_size_bytes,
            max_concurrency=config.max_concurrency,
        )
        self._write_args = _write_args(config)

    async def put(self, local_path: Path, dest_key: str) -> UploadOutcome:
        key = self._key(dest_key)
        content_type = mimetypes.guess_type(local_path.name)[0] or "application/octet-stream"
        extra = {**self._write_args, "ContentType": content_type}
        await self._run(
            "upload",
            self._client.upload_file,
            str(local_path),
            self._bucket,
            key,
            ExtraArgs=extra,
            Config=self._transfer,
        )
        return await self._outcome(key)

    async def put_json(self, obj: Mapping[str, JsonValue], dest_key: str) -> UploadOutcome:
        key = self._key(dest_key)
        await self._run(
            "upload",
            self._client.put_object,
            Bucket=self._bucket,
            Key=key,
            Body=json_document(obj),
            ContentType="application/json",
            **self._write_args,
        )
        return await self._outcome(key)

    async def get(self, storage_uri: str, local_path: Path) -> None:
        await self._run("download", self._download, self._key_of(storage_uri), local_path)

    async def exists(self, dest_key: str) -> bool:
        return await self._run("lookup", self._exists, self._key(dest_key))

    async def delete(self, dest_key: str) -> None:
        # S3 answers a delete of a missing key with success, as the protocol wants.
        key = self._key(dest_key)
        await self._run("delete", self._client.delete_object, Bucket=self._bucket, Key=key)

    async def _outcome(self, key: str) -> UploadOutcome:
        view_url = None
        match self._config.view_url:
            case "prefix":
                view_url = f"{self._config.view_url_prefix}{key}"
            case "presigned":
                view_url = await self._run("presign", self._presign, key)
        return UploadOutcome(storage_uri=f"s3://{self._bucket}/{key}", view_url=view_url)

    def _translate(self, action: str, exc: Exception) -> S3StorageError:
        match exc:
            case ClientError():
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                message = exc.response.get("Error", {}).get("Message", "")
                reason = f"{_error_code(exc) or 'error'} (HTTP {status}) {message}".rstrip()
            case _:
                reason = f"{type(exc).__name__}: {exc}"
        return S3StorageError(f"S3 {action} in bucket {self._bucket!r} failed: {reason}")

    def _key(self, dest_key: str) -> str:
        return f"{self._config.prefix}{checked_key(dest_key)}"

    def _key_of(self, storage_uri: str) -> str:
        bucket, _, key = storage_uri.removeprefix("s3://").partition("/")
        if not storage_uri.startswith("s3://") or bucket != self._bucket or not key:
            raise ValueError(f"not a URI of this storage: {storage_uri!r}")
        return key

    # --- worker-thread side

    def _presign(self, key: str) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=self._config.presign_expires_s,
        )
        return url

    def _download(self, key: str, local_path: Path) -> None:
        replace_atomically(
            local_path, lambda tmp: self._client.download_file(self._bucket, key, tmp)
        )

    def _ping(self) -> object:
        return self._client.head_bucket(Bucket=self._bucket)

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise
        return True


def _client(config: S3StorageConfig) -> Any:
    key_id, secret, token = (
        env.value.get_secret_value() if env is not None else None
        for env in (
            config.access_key_id_env,
            config.secret_access_key_env,
            config.session_token_env,
        )
    )
    options: dict[str, Any] = {}
    if config.endpoint_url:
        # boto3 now adds CRC checksums to every request, which several S3-compatible stores
        # refuse; send them only where S3 requires them.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    boto_config = BotoConfig(
        signature_version="s3v4",
        s3={"addressing_style": config.addressing_style},
        retries={"max_attempts": config.max_attempts, "mode": "standard"},
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
        max_pool_connections=_POOL_CONNECTIONS,
        **options,
    )
    session = boto3.session.Session(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=config.region,
    )
    return session.client("s3", endpoint_url=config.endpoint_url, config=boto_config)


def _write_args(config: S3StorageConfig) -> dict[str, str]:
    args = {
        "ServerSideEncryption": config.server_side_encryption,
        "SSEKMSKeyId": config.sse_kms_key_id,
        "StorageClass": config.storage_class,
    }
    return {name: value for name, value in args.items() if value}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
