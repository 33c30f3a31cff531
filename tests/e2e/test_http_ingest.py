"""The HTTP ingest: clips POSTed to `/api/v1/ingest/{camera}` of the running service."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import tests.fakes.plugins  # noqa: F401
from homesec.app import HomeSecApp
from homesec.models.clip import parse_clip_id
from homesec.models.enums import ClipStatus
from homesec.models.state import ClipStateData
from tests.fakes.builders import make_config
from tests.fakes.running import running_app
from tests.services.postgres import ThrowawayPostgres

KEY_ENV = "HOMESEC_TEST_INGEST_KEY"
KEY = "ingest-test-key"
CAMERA = "doorbell"


def _config(tmp_path: Path, ingest: dict[str, Any] | None = None, **sections: Any) -> Any:
    cameras = [
        {
            "name": CAMERA,
            "source": {
                "backend": "http_ingest",
                "config": {
                    "spool_dir": str(tmp_path / "ingest"),
                    "max_file_size_bytes": 20_000_000,
                    **(ingest or {}),
                },
            },
        },
        {
            "name": "garden",
            "source": {"backend": "local_folder", "config": {"watch_dir": str(tmp_path / "in")}},
        },
    ]
    server = {"enabled": True, "port": 0, "auth_enabled": True, "api_key_env": KEY_ENV}
    return make_config(tmp_path, cameras=cameras, server=server, **sections)


@asynccontextmanager
async def _service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **sections: Any
) -> AsyncIterator[tuple[HomeSecApp, httpx.AsyncClient]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    async with running_app(_config(tmp_path, **sections)) as app:
        assert app.server is not None
        base = f"http://127.0.0.1:{app.server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield app, client


async def _done(app: HomeSecApp, clip_id: str, timeout: float = 30.0) -> ClipStateData:
    async with asyncio.timeout(timeout):
        while True:
            state = await app.components.repository.get(clip_id)
            if state is not None and state.status == ClipStatus.DONE:
                return state
            await asyncio.sleep(0.1)


def _spooled(tmp_path: Path) -> list[str]:
    folder = tmp_path / "ingest" / CAMERA
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


async def test_a_posted_clip_is_spooled_before_the_answer_and_goes_through_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, person_clip: Path
) -> None:
    # Given the service with an http_ingest camera and the API key
    async with _service(tmp_path, monkeypatch) as (app, client):
        # When a script POSTs a clip with the key
        response = await client.post(
            f"/api/v1/ingest/{CAMERA}",
            content=person_clip.read_bytes(),
            headers={"X-API-Key": KEY},
        )

        # Then it is answered 201 with its clip_id, the file is already in the spool, and
        # the clip is processed like any other
        assert response.status_code == 201, response.text
        body = response.json()
        clip_id = body["clip_id"]
        assert _spooled(tmp_path) == [clip_id]
        state = await _done(app, clip_id)
    name = parse_clip_id(clip_id, CAMERA)
    assert name is not None and body["camera_name"] == CAMERA
    assert body["duration_s"] == pytest.approx(20.0, abs=0.5)
    assert state.storage_uri is not None and state.filter_result is not None


async def test_a_filename_that_follows_the_clip_id_rule_is_kept_and_others_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, person_clip: Path
) -> None:
    # Given the service
    async with _service(tmp_path, monkeypatch) as (_, client):
        data = person_clip.read_bytes()

        # When clips are sent with a rule-following name, the same name again, and hostile names
        answers = [
            await client.post(
                f"/api/v1/ingest/{CAMERA}",
                params={"filename": name},
                content=data,
                headers={"X-API-Key": KEY},
            )
            for name in (
                f"{CAMERA}_1700000000.mp4",
                f"{CAMERA}_1700000000.mp4",
                "../../etc/passwd",
                "garden_1700000000.mp4",
            )
        ]

    # Then the first keeps its name, the second gets the next free one, and the hostile ones
    # are named after their arrival in the camera's spool
    ids = [answer.json()["clip_id"] for answer in answers]
    assert ids[:2] == [f"{CAMERA}_1700000000.mp4", f"{CAMERA}_1700000000_2.mp4"]
    for clip_id in ids[2:]:
        name = parse_clip_id(clip_id, CAMERA)
        assert name is not None and name.unix_seconds > 1_700_000_000
    assert sorted(ids) == _spooled(tmp_path)


@pytest.mark.parametrize(
    ("camera", "body", "headers", "expected"),
    [
        (CAMERA, b"\x00\x00\x00\x18ftypmp42 but not really a video", {"X-API-Key": KEY}, 415),
        (CAMERA, b"<html>hello</html>", {"X-API-Key": KEY}, 415),
        (CAMERA, b"", {"X-API-Key": KEY}, 400),
        (CAMERA, None, {}, 401),
        (CAMERA, None, {"X-API-Key": "wrong"}, 401),
        ("nobody", None, {"X-API-Key": KEY}, 404),
        ("garden", None, {"X-API-Key": KEY}, 409),
    ],
)
async def test_what_is_refused_gets_a_clear_4xx_and_leaves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    person_clip: Path,
    camera: str,
    body: bytes | None,
    headers: dict[str, str],
    expected: int,
) -> None:
    # Given the service
    async with _service(tmp_path, monkeypatch) as (app, client):
        # When a request is refused
        content = person_clip.read_bytes() if body is None else body
        response = await client.post(f"/api/v1/ingest/{camera}", content=content, headers=headers)

        # Then its status says why, with a message that shows none of the server's paths,
        # and nothing is spooled or processed
        assert response.status_code == expected, response.text
        assert response.json()["detail"]
        assert str(tmp_path) not in response.text
        assert _spooled(tmp_path) == []
        assert app.components.pipeline.in_flight == 0


async def test_a_clip_over_the_size_limit_is_refused_with_413(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, person_clip: Path
) -> None:
    # Given a camera that takes clips up to 20 MB
    async with _service(tmp_path, monkeypatch) as (_, client):
        # When 21 MB arrive
        response = await client.post(
            f"/api/v1/ingest/{CAMERA}",
            content=person_clip.read_bytes() * 30,
            headers={"X-API-Key": KEY},
        )

        # Then it is refused, and no part of it stays on disk
        assert response.status_code == 413
        assert "20000000" in response.json()["detail"]
        assert _spooled(tmp_path) == []


async def test_a_clip_that_cannot_be_stored_is_answered_507_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, person_clip: Path
) -> None:
    # Given the service, and a disk that is full when the ingest syncs a clip to it
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        if ".parts" in Path(f"/proc/self/fd/{fd}").readlink().parts:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    async with _service(tmp_path, monkeypatch) as (app, client):
        monkeypatch.setattr(os, "fsync", full_disk)

        # When a clip is POSTed
        response = await client.post(
            f"/api/v1/ingest/{CAMERA}",
            content=person_clip.read_bytes(),
            headers={"X-API-Key": KEY},
        )

        # Then the client is told it was not stored (it may send it again), and nothing is
        # left on disk or handed on
        assert response.status_code == 507, response.text
        assert "No space left on device" in response.json()["detail"]
        assert str(tmp_path) not in response.text
        assert _spooled(tmp_path) == []
        assert app.components.pipeline.in_flight == 0


async def test_a_clip_posted_while_the_database_is_down_is_taken_and_processed_later(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    person_clip: Path,
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    # Given the service on Postgres, and Postgres going down
    monkeypatch.setenv("HOMESEC_TEST_INGEST_DSN", throwaway_postgres.dsn)
    state_store = {"dsn_env": "HOMESEC_TEST_INGEST_DSN"}
    async with _service(tmp_path, monkeypatch, state_store=state_store) as (app, client):
        throwaway_postgres.stop()

        # When a clip is POSTed
        response = await client.post(
            f"/api/v1/ingest/{CAMERA}",
            content=person_clip.read_bytes(),
            headers={"X-API-Key": KEY},
        )

        # Then it is taken at once, and processed once the database is back
        assert response.status_code == 201, response.text
        clip_id = response.json()["clip_id"]
        assert _spooled(tmp_path) == [clip_id]
        throwaway_postgres.start()
        state = await _done(app, clip_id, timeout=60)
    assert state.storage_uri is not None


async def test_a_clip_that_trickles_in_is_refused_with_408_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, person_clip: Path
) -> None:
    # Given a camera that gives an upload 1 s, and a client that sends 64 KiB every 0.2 s
    data = person_clip.read_bytes()

    async def trickle() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 16):
            yield data[start : start + (1 << 16)]
            await asyncio.sleep(0.2)

    async with _service(tmp_path, monkeypatch, ingest={"max_upload_s": 1.0}) as (_, client):
        # When it sends the clip
        response = await client.post(
            f"/api/v1/ingest/{CAMERA}", content=trickle(), headers={"X-API-Key": KEY}
        )

        # Then it is refused once the second is up, and no part of it stays
        assert response.status_code == 408
        assert "took over 1 s" in response.json()["detail"]
        assert _spooled(tmp_path) == []
