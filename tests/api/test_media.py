"""A clip's video with HTTP range requests and its snapshot: local disk first, else storage."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest

from homesec.models.enums import ClipStatus
from homesec.models.state import ClipStateData
from tests.api.conftest import API_KEY, KEY_ENV, ApiHarness
from tests.api.seeding import clip_state
from tests.fakes.builders import make_config
from tests.fakes.running import running_app

CLIP_ID = "front_door_1700000000.mp4"
JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 64 + b"\xff\xd9"


async def _spooled_clip(api: ApiHarness, media: Path) -> tuple[ClipStateData, bytes]:
    """A clip in the local spool (a copy of the shared media), its state saved."""
    api.spool.mkdir(parents=True, exist_ok=True)
    local = api.spool / CLIP_ID
    shutil.copyfile(media, local)
    state = clip_state("front_door", 1_700_000_000, local_path=str(local))
    await api.repository.save(state)
    return state, local.read_bytes()


async def test_the_whole_video_is_served_and_advertises_ranges(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a clip in the local spool
    _, content = await _spooled_clip(api, person_clip)

    # When its video is fetched without a Range header
    response = await api.client.get(f"/api/v1/clips/{CLIP_ID}/video")

    # Then it is all there, as MP4, with byte ranges on offer
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == content


async def test_range_requests_answer_206_with_the_requested_bytes(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a clip in the local spool
    _, content = await _spooled_clip(api, person_clip)
    size = len(content)

    # When byte ranges of its video are asked for: a prefix, a middle, a suffix, an open end
    ranges = {
        "bytes=0-99": (0, 99),
        "bytes=1000-1999": (1000, 1999),
        "bytes=-500": (size - 500, size - 1),
        "bytes=4000000-": (4_000_000, size - 1),
    }
    responses = {
        header: await api.client.get(f"/api/v1/clips/{CLIP_ID}/video", headers={"Range": header})
        for header in ranges
    }

    # Then each is partial content with exactly those bytes and their place in the file
    for header, (first, last) in ranges.items():
        response = responses[header]
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert int(response.headers["content-length"]) == last - first + 1, header
        assert response.content == content[first : last + 1], header


async def test_a_range_beyond_the_end_is_not_satisfiable(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a clip in the local spool
    _, content = await _spooled_clip(api, person_clip)

    # When a range starting past its last byte is asked for
    response = await api.client.get(
        f"/api/v1/clips/{CLIP_ID}/video", headers={"Range": f"bytes={len(content)}-"}
    )

    # Then the answer is 416 with the real size
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(content)}"


async def test_a_clip_gone_from_local_disk_is_fetched_once_from_storage(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a clip that is only in storage (retention removed the local copy)
    state, content = await _spooled_clip(api, person_clip)
    uploaded = await api.storage.put(Path(state.local_path), f"front_door/{CLIP_ID}")
    Path(state.local_path).unlink()
    state.storage_uri = uploaded.storage_uri
    await api.repository.save(state)

    # When a player asks for two ranges at once, then one more after storage lost the file
    video = f"/api/v1/clips/{CLIP_ID}/video"
    first, second = await asyncio.gather(
        api.client.get(video, headers={"Range": "bytes=0-99"}),
        api.client.get(video, headers={"Range": "bytes=-100"}),
    )
    Path(uploaded.storage_uri.removeprefix("file://")).unlink()
    third = await api.client.get(video, headers={"Range": "bytes=100-199"})

    # Then every range is served from the one copy fetched from storage
    assert [r.status_code for r in (first, second, third)] == [206, 206, 206]
    assert first.content == content[:100] and second.content == content[-100:]
    assert third.content == content[100:200]


async def test_missing_or_unfetchable_video_answers_404_or_502(api: ApiHarness) -> None:
    # Given a clip gone everywhere, and one whose storage cannot provide it
    gone = clip_state("front_door", 1_700_000_000)
    unfetchable = clip_state("front_door", 1_700_000_001)
    unfetchable.storage_uri = "file:///outside/the/storage/root.mp4"
    await api.repository.save(gone)
    await api.repository.save(unfetchable)

    # When their videos are asked for
    missing = await api.client.get(f"/api/v1/clips/{gone.clip_id}/video")
    failed = await api.client.get(f"/api/v1/clips/{unfetchable.clip_id}/video")

    # Then the first is not found and the second is a storage (gateway) failure
    assert missing.status_code == 404
    assert failed.status_code == 502


async def test_the_snapshot_is_served_from_local_disk_then_from_storage_else_404(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a clip with a snapshot next to it locally, and a second copy in storage
    state, _ = await _spooled_clip(api, person_clip)
    snapshot_url = f"/api/v1/clips/{CLIP_ID}/snapshot"
    absent = await api.client.get(snapshot_url)
    local_snapshot = api.spool / "front_door_1700000000.snapshot.jpg"
    local_snapshot.write_bytes(JPEG)
    uploaded = await api.storage.put(
        local_snapshot, "front_door/front_door_1700000000.snapshot.jpg"
    )
    await api.storage.put(Path(state.local_path), f"front_door/{CLIP_ID}")
    state.storage_uri = uploaded.storage_uri.replace(".snapshot.jpg", ".mp4")

    # When the snapshot is asked for with the local file there, then only in storage
    from_disk = await api.client.get(snapshot_url)
    local_snapshot.unlink()
    Path(state.local_path).unlink()
    await api.repository.save(state)
    from_storage = await api.client.get(snapshot_url)

    # Then it is a 404 before it exists, then the JPEG from either place
    assert absent.status_code == 404
    assert from_disk.status_code == 200 and from_disk.content == JPEG
    assert from_disk.headers["content-type"] == "image/jpeg"
    assert from_storage.status_code == 200 and from_storage.content == JPEG


@pytest.mark.slow
async def test_a_signed_video_url_plays_over_http_on_the_running_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, person_clip: Path
) -> None:
    # Given the real service with auth on, which processed a clip dropped into its folder
    monkeypatch.setenv(KEY_ENV, API_KEY)
    server = {"enabled": True, "port": 0, "auth_enabled": True, "api_key_env": KEY_ENV}
    async with running_app(make_config(tmp_path, server=server)) as app:
        assert app.server is not None
        inbox = tmp_path / "inbox" / "front_door"
        shutil.copyfile(person_clip, inbox / CLIP_ID)
        base = f"http://127.0.0.1:{app.server.port}"
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as client:
            item = await _wait_until_done(client)
        # When its signed video URL is fetched with a Range header and no key
        async with httpx.AsyncClient(base_url=base) as anonymous:
            response = await anonymous.get(item["video_url"], headers={"Range": "bytes=0-1023"})
            unsigned = await anonymous.get(item["video_url"].split("?")[0])

    # Then the range plays without the key, but the bare URL needs credentials
    assert response.status_code == 206 and len(response.content) == 1024
    assert response.headers["content-range"].startswith("bytes 0-1023/")
    assert unsigned.status_code == 401


async def _wait_until_done(client: httpx.AsyncClient) -> dict[str, str]:
    async with asyncio.timeout(20):
        while True:
            items = (await client.get("/api/v1/clips")).json()["items"]
            if items and items[0]["status"] == ClipStatus.DONE:
                return dict(items[0])
            await asyncio.sleep(0.1)
