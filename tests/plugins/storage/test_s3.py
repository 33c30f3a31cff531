"""s3 storage: real HTTP against moto's standalone S3 server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from homesec.interfaces import StorageBackend
from homesec.plugins.registry import load_storage
from homesec.plugins.storage.s3 import S3StorageError
from tests.services.s3_server import S3Server, s3_storage_config

KEY = "front_door/front_door_1700000000.mp4"
_MiB = 1024 * 1024


def _storage(server: S3Server, bucket: str, **overrides: Any) -> StorageBackend:
    return load_storage("s3", s3_storage_config(server, bucket, **overrides))


async def test_a_clip_is_uploaded_found_and_read_back(
    s3_server: S3Server, s3_bucket: str, person_clip: Path, tmp_path: Path
) -> None:
    # Given an S3 storage with a key prefix
    storage = _storage(s3_server, s3_bucket, prefix="/homecam/")

    # When a clip is put twice, looked up and read back
    first = await storage.put(person_clip, KEY)
    second = await storage.put(person_clip, KEY)
    copy = tmp_path / "restored" / "clip.mp4"
    await storage.get(first.storage_uri, copy)
    present = await storage.exists(KEY)
    absent = await storage.exists("front_door/missing.mp4")
    await storage.aclose()

    # Then it lives once under the prefix, as a video, with the same bytes
    assert first.storage_uri == second.storage_uri == f"s3://{s3_bucket}/homecam/{KEY}"
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == [f"homecam/{KEY}"]
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"homecam/{KEY}")
    assert head["ContentType"] == "video/mp4"
    assert copy.read_bytes() == person_clip.read_bytes()
    assert (present, absent) == (True, False)
    assert list(copy.parent.glob(".*")) == []


@pytest.mark.slow
async def test_a_large_clip_goes_up_as_a_multipart_upload(
    s3_server: S3Server, s3_bucket: str, media_dir: Path, person_clip: Path, tmp_path: Path
) -> None:
    # Given a 12.7 MB file and multipart uploads above 5 MiB in 5 MiB parts
    clip = tmp_path / "front_door_1700000001.avi"
    clip.write_bytes((media_dir / "vtest.avi").read_bytes() + person_clip.read_bytes())
    storage = _storage(
        s3_server,
        s3_bucket,
        multipart_threshold_bytes=5 * _MiB,
        multipart_chunk_size_bytes=5 * _MiB,
    )

    # When it is put
    outcome = await storage.put(clip, "front_door/front_door_1700000001.avi")
    await storage.aclose()

    # Then S3 assembled it from three parts, byte for byte
    key = "front_door/front_door_1700000001.avi"
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")
    body = s3_server.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert body == clip.read_bytes()
    assert outcome.storage_uri == f"s3://{s3_bucket}/{key}"


async def test_put_json_stores_the_artifact_next_to_the_clip(
    s3_server: S3Server, s3_bucket: str
) -> None:
    # Given an S3 storage
    storage = _storage(s3_server, s3_bucket)

    # When an analysis is stored
    outcome = await storage.put_json({"risk_level": "low", "summary": "A cat"}, "front_door/a.json")
    await storage.aclose()

    # Then it is a JSON object at that key
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key="front_door/a.json")
    assert stored["ContentType"] == "application/json"
    assert json.loads(stored["Body"].read()) == {"risk_level": "low", "summary": "A cat"}
    assert outcome.storage_uri == f"s3://{s3_bucket}/front_door/a.json"


async def test_delete_removes_the_object_and_a_missing_one_is_no_error(
    s3_server: S3Server, s3_bucket: str, person_clip: Path
) -> None:
    # Given an S3 storage with a key prefix holding two clips
    storage = _storage(s3_server, s3_bucket, prefix="homecam")
    await storage.put(person_clip, KEY)
    await storage.put(person_clip, "front_door/front_door_1700000001.mp4")

    # When the first is deleted, twice
    await storage.delete(KEY)
    await storage.delete(KEY)
    gone = not await storage.exists(KEY)
    await storage.aclose()

    # Then only that object is gone from the bucket
    assert gone
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["homecam/front_door/front_door_1700000001.mp4"]


@pytest.mark.slow
async def test_the_presigned_view_url_downloads_the_same_bytes(
    s3_server: S3Server, s3_bucket: str, empty_scene_clip: Path
) -> None:
    # Given an S3 storage whose links live ten minutes
    storage = _storage(s3_server, s3_bucket, presign_expires_s=600)

    # When a clip is put and its view_url fetched without credentials
    outcome = await storage.put(empty_scene_clip, KEY)
    await storage.aclose()
    assert outcome.view_url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(outcome.view_url)

    # Then the link is signed for ten minutes and serves the clip
    assert "X-Amz-Expires=600" in outcome.view_url
    assert response.status_code == 200
    assert response.content == empty_scene_clip.read_bytes()


async def test_encryption_storage_class_and_a_prefix_link_apply_to_every_object(
    s3_server: S3Server, s3_bucket: str, empty_scene_clip: Path
) -> None:
    # Given an S3 storage with server-side encryption, a storage class and CDN links
    storage = _storage(
        s3_server,
        s3_bucket,
        server_side_encryption="AES256",
        storage_class="STANDARD_IA",
        view_url="prefix",
        view_url_prefix="https://cdn.example.com/",
    )

    # When a clip and an artifact are stored
    clip = await storage.put(empty_scene_clip, KEY)
    await storage.put_json({"risk_level": "low"}, "front_door/a.json")
    await storage.aclose()

    # Then both objects are encrypted and in that class, and the link is prefix + key
    for key in (KEY, "front_door/a.json"):
        head = s3_server.client().head_object(Bucket=s3_bucket, Key=key)
        assert (head["ServerSideEncryption"], head["StorageClass"]) == ("AES256", "STANDARD_IA")
    assert clip.view_url == f"https://cdn.example.com/{KEY}"


@pytest.mark.slow
async def test_ping_and_errors_carry_their_cause(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    # Given a storage on an existing bucket and one on a missing bucket
    present = _storage(s3_server, s3_bucket)
    missing = _storage(s3_server, "homesec-no-such-bucket")

    # When both are pinged and a missing clip is read
    pings = (await present.ping(), await missing.ping())
    with pytest.raises(S3StorageError, match="download") as error:
        await present.get(f"s3://{s3_bucket}/{KEY}", tmp_path / "clip.mp4")
    await present.aclose()
    await missing.aclose()

    # Then only the existing bucket answers, and the error keeps boto3's as its cause
    assert pings == (True, False)
    assert isinstance(error.value.__cause__, ClientError)
    assert not (tmp_path / "clip.mp4").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"secret_access_key_env": None},
        {"view_url": "prefix"},
        {"view_url_prefix": "https://cdn.example.com/"},
        {"sse_kms_key_id": "key-1"},
        {"multipart_chunk_size_bytes": _MiB},
        {"presign_expires_s": 8 * 24 * 3600},
    ],
)
def test_unusable_configs_are_refused(
    s3_server: S3Server, s3_bucket: str, overrides: dict[str, Any]
) -> None:
    # Given a config with a half credential pair, a link mode without its prefix, or limits
    # outside S3's
    # When it is loaded
    # Then validation fails
    with pytest.raises(ValidationError):
        _storage(s3_server, s3_bucket, **overrides)
