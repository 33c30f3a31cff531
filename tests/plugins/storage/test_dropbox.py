"""dropbox storage: the official SDK's real HTTPS requests, answered by a local Dropbox fake."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from dropbox.exceptions import AuthError, RateLimitError  # type: ignore[import-untyped]
from pydantic import ValidationError

from homesec.interfaces import StorageBackend
from homesec.plugins.registry import load_storage
from homesec.plugins.storage.dropbox import DropboxStorageError
from tests.services.dropbox_fake import LONG_LIVED_TOKEN, DropboxFake

KEY = "front_door/front_door_1700000000.mp4"
_MiB = 1024 * 1024


def _storage(**overrides: Any) -> StorageBackend:
    config = {
        "root": "/homecam",
        "refresh_token_env": "DROPBOX_REFRESH_TOKEN",
        "app_key_env": "DROPBOX_APP_KEY",
        "app_secret_env": "DROPBOX_APP_SECRET",
        **overrides,
    }
    return load_storage("dropbox", config)


async def test_a_small_clip_is_one_upload_and_view_url_is_the_returned_path(
    dropbox_fake: DropboxFake, person_clip: Path
) -> None:
    # Given a Dropbox whose folder already exists as "/HomeCam" (its casing is kept)
    dropbox_fake.add_folder("/HomeCam")
    storage = _storage()

    # When a clip under the threshold is put twice
    first = await storage.put(person_clip, KEY)
    second = await storage.put(person_clip, KEY)
    await storage.aclose()

    # Then each put is one overwrite-mode upload, and the file is stored once, intact
    uploads = dropbox_fake.calls("2/files/upload")
    assert len(uploads) == 2
    assert all(call.arg["mode"] == {".tag": "overwrite"} and call.arg["mute"] for call in uploads)
    assert uploads[0].arg["path"] == "/homecam/" + KEY
    assert list(dropbox_fake.files) == ["/homecam/" + KEY]
    assert dropbox_fake.files["/homecam/" + KEY].data == person_clip.read_bytes()
    # And the links come from the upload's path_display, with no other API call
    assert first == second
    assert first.storage_uri == "dropbox:/HomeCam/" + KEY
    assert first.view_url == "https://www.dropbox.com/home/HomeCam/" + KEY
    assert {call.route for call in dropbox_fake.requests} == {"oauth2/token", "2/files/upload"}


async def test_a_large_clip_is_uploaded_in_chunks_through_a_session(
    dropbox_fake: DropboxFake, media_dir: Path, person_clip: Path, tmp_path: Path
) -> None:
    # Given a 12.7 MB file and chunked uploads above 1 MiB, in 4 MiB chunks
    clip = tmp_path / "front_door_1700000001.avi"
    clip.write_bytes((media_dir / "vtest.avi").read_bytes() + person_clip.read_bytes())
    storage = _storage(chunked_threshold_bytes=_MiB, chunk_size_bytes=4 * _MiB)

    # When it is put
    outcome = await storage.put(clip, "front_door/front_door_1700000001.avi")
    await storage.aclose()

    # Then it went as start + append + finish, no request above one chunk, and arrived whole
    routes = [call.route for call in dropbox_fake.requests if call.route != "oauth2/token"]
    assert routes == [
        "2/files/upload_session/start",
        "2/files/upload_session/append_v2",
        "2/files/upload_session/append_v2",
        "2/files/upload_session/finish",
    ]
    assert all(call.body_size <= 4 * _MiB for call in dropbox_fake.requests)
    finish = dropbox_fake.calls("2/files/upload_session/finish")[0]
    assert finish.arg["cursor"]["offset"] == 12 * _MiB
    assert finish.arg["commit"]["mode"] == {".tag": "overwrite"}
    assert dropbox_fake.files["/homecam/front_door/front_door_1700000001.avi"].data == (
        clip.read_bytes()
    )
    assert outcome.storage_uri == "dropbox:/homecam/front_door/front_door_1700000001.avi"


@pytest.mark.slow
async def test_a_429_is_retried_after_its_retry_after(
    dropbox_fake: DropboxFake, empty_scene_clip: Path
) -> None:
    # Given a Dropbox that rate-limits the next upload for 1 s
    dropbox_fake.fail_next("2/files/upload", status=429, retry_after=1)
    storage = _storage()

    # When a clip is put
    started = time.monotonic()
    outcome = await storage.put(empty_scene_clip, KEY)
    elapsed = time.monotonic() - started
    await storage.aclose()

    # Then the upload was tried again after the wait, and succeeded
    assert [call.status for call in dropbox_fake.calls("2/files/upload")] == [429, 200]
    assert elapsed >= 1.0
    assert outcome.storage_uri == "dropbox:/homecam/" + KEY


async def test_rate_limits_beyond_the_allowed_retries_raise_with_the_cause(
    dropbox_fake: DropboxFake, empty_scene_clip: Path
) -> None:
    # Given a storage that may not retry a 429, and a Dropbox that sends one
    dropbox_fake.fail_next("2/files/upload", status=429, retry_after=1)
    storage = _storage(max_retries_on_rate_limit=0)

    # When a clip is put
    # Then the error is this plugin's, with the SDK's error as the cause
    with pytest.raises(DropboxStorageError, match="rate limited") as error:
        await storage.put(empty_scene_clip, KEY)
    assert isinstance(error.value.__cause__, RateLimitError)
    await storage.aclose()


async def test_an_expired_access_token_is_refreshed_and_the_call_repeated(
    dropbox_fake: DropboxFake, empty_scene_clip: Path
) -> None:
    # Given a storage that has uploaded with its first access token
    storage = _storage()
    await storage.put(empty_scene_clip, KEY)
    first_token = dropbox_fake.calls("2/files/upload")[0].authorization

    # When Dropbox expires that token before the next call
    dropbox_fake.expire_access_tokens()
    outcome = await storage.put_json({"risk_level": "low"}, "front_door/analysis.json")
    await storage.aclose()

    # Then the refused call is repeated with a fresh token from the refresh token
    attempts = dropbox_fake.calls("2/files/upload")[1:]
    assert [call.status for call in attempts] == [401, 200]
    assert attempts[1].authorization != first_token
    assert len(dropbox_fake.calls("oauth2/token")) == 2
    assert outcome.storage_uri == "dropbox:/homecam/front_door/analysis.json"


async def test_get_exists_and_put_json_round_trip(
    dropbox_fake: DropboxFake, empty_scene_clip: Path, tmp_path: Path
) -> None:
    # Given a stored clip and an analysis stored next to it
    storage = _storage()
    clip = await storage.put(empty_scene_clip, KEY)
    analysis = await storage.put_json({"risk_level": "low"}, "front_door/analysis.json")

    # When they are looked up and read back
    copy = tmp_path / "restored" / "clip.mp4"
    await storage.get(clip.storage_uri, copy)
    present = await storage.exists(KEY)
    absent = await storage.exists("front_door/missing.mp4")
    with pytest.raises(DropboxStorageError, match="no such file"):
        await storage.get("dropbox:/homecam/front_door/missing.mp4", tmp_path / "x.mp4")
    await storage.aclose()

    # Then the bytes are the same, existence is right and the artifact is JSON
    assert copy.read_bytes() == empty_scene_clip.read_bytes()
    assert (present, absent) == (True, False)
    stored = dropbox_fake.files["/homecam/front_door/analysis.json"].data
    assert json.loads(stored) == {"risk_level": "low"}
    assert analysis.view_url == "https://www.dropbox.com/home/homecam/front_door/analysis.json"
    assert list(tmp_path.rglob(".*")) == []


async def test_delete_removes_the_file_and_a_missing_one_is_no_error(
    dropbox_fake: DropboxFake, empty_scene_clip: Path
) -> None:
    # Given two stored clips
    storage = _storage()
    await storage.put(empty_scene_clip, KEY)
    await storage.put(empty_scene_clip, "front_door/front_door_1700000001.mp4")

    # When the first is deleted, twice
    await storage.delete(KEY)
    await storage.delete(KEY)
    gone = not await storage.exists(KEY)
    await storage.aclose()

    # Then only that file is gone, through Dropbox's delete call
    assert gone
    assert list(dropbox_fake.files) == ["/homecam/front_door/front_door_1700000001.mp4"]
    deletes = dropbox_fake.calls("2/files/delete_v2")
    assert [(call.arg["path"], call.status) for call in deletes] == [
        ("/homecam/" + KEY, 200),
        ("/homecam/" + KEY, 409),
    ]


async def test_a_long_lived_token_works_and_a_bad_one_fails_without_leaking(
    dropbox_fake: DropboxFake, empty_scene_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one storage with the long-lived token and one with a revoked token
    monkeypatch.setenv("DROPBOX_BAD_TOKEN", "sl.revoked-secret-token")
    good = _storage(refresh_token_env=None, app_key_env=None, token_env="DROPBOX_TOKEN")
    bad = _storage(refresh_token_env=None, app_key_env=None, token_env="DROPBOX_BAD_TOKEN")

    # When both are pinged and the bad one uploads
    pings = (await good.ping(), await bad.ping())
    with pytest.raises(DropboxStorageError, match="not authorized") as error:
        await bad.put(empty_scene_clip, KEY)
    await good.aclose()
    await bad.aclose()

    # Then only the good one answers, and the error names no token
    assert pings == (True, False)
    assert dropbox_fake.calls("2/check/user")[0].authorization == f"Bearer {LONG_LIVED_TOKEN}"
    assert isinstance(error.value.__cause__, AuthError)
    assert "sl.revoked-secret-token" not in str(error.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"token_env": "DROPBOX_TOKEN"},
        {"refresh_token_env": None, "app_key_env": None},
        {"app_key_env": None},
        {"chunk_size_bytes": 5 * _MiB},
        {"root": "homecam"},
    ],
)
def test_unusable_configs_are_refused(dropbox_fake: DropboxFake, overrides: dict[str, Any]) -> None:
    # Given a config with two ways to authenticate, none, or a bad chunk size or root
    # When it is loaded
    # Then validation fails
    with pytest.raises(ValidationError):
        _storage(**overrides)
