"""ftp source: a real FTP client (ftplib) uploads like a camera; only finished uploads count."""

from __future__ import annotations

import asyncio
import ftplib
import io
import logging
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from homesec.errors import StartupError
from homesec.interfaces import ClipSource
from homesec.models.clip import Clip
from homesec.models.config import StateStoreConfig
from homesec.models.enums import PluginType
from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_source, validate_plugin_config
from homesec.repository.clip_repository import ClipRepository
from tests.repository.builders import done_state
from tests.services.postgres import free_port

USERS = {"front_door": ("cam-front", "front-secret-1"), "backyard": ("cam-back", "back-secret-2")}


@pytest.fixture(autouse=True)
def _ftp_users(monkeypatch: pytest.MonkeyPatch) -> None:
    for camera, (user, password) in USERS.items():
        monkeypatch.setenv(f"FTP_USER_{camera.upper()}", user)
        monkeypatch.setenv(f"FTP_PASSWORD_{camera.upper()}", password)


@pytest.fixture
def port() -> int:
    return free_port()


def _config(root: Path, port: int, camera: str, **extra: Any) -> dict[str, Any]:
    return {
        "camera_name": camera,
        "host": "127.0.0.1",
        "port": port,
        "root_dir": str(root),
        "username_env": f"FTP_USER_{camera.upper()}",
        "password_env": f"FTP_PASSWORD_{camera.upper()}",
        "login_failure_delay_s": 0.05,
        "health_check_interval_s": 0.1,
        **extra,
    }


@asynccontextmanager
async def _running(
    *configs: dict[str, Any], namer: ClipNames | None = None
) -> AsyncIterator[dict[str, list[Clip]]]:
    """Start one source per config; yield the clips each hands on, by camera name."""
    sources: list[ClipSource] = []
    received: dict[str, list[Clip]] = {}
    try:
        for config in configs:
            source = load_source("ftp", config)
            received[source.camera_name] = []
            source.register_callback(received[source.camera_name].append)
            source.use_namer(namer or ClipNames())
            await source.start()
            sources.append(source)
        yield received
    finally:
        for source in sources:
            await source.aclose()


def _client(port: int, camera: str | None = "front_door") -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=5)
    if camera is not None:
        ftp.login(*USERS[camera])
    return ftp


def _upload(port: int, camera: str, remote: str, clip: Path, folder: str | None = None) -> None:
    with _client(port, camera) as ftp, clip.open("rb") as handle:
        if folder is not None:
            ftp.cwd(folder)
        ftp.storbinary(f"STOR {remote}", handle)


async def _wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


async def test_a_camera_upload_is_handed_on_once_under_a_clip_id(
    tmp_path: Path, port: int, person_clip: Path
) -> None:
    # Given an FTP source for the front door camera
    async with _running(_config(tmp_path, port, "front_door")) as received:
        # When the camera makes a dated folder and uploads a clip under its own name
        before = int(time.time())

        def camera_upload() -> None:
            with _client(port) as ftp, person_clip.open("rb") as handle:
                ftp.cwd("/front_door")
                ftp.mkd("2024-01-01")
                ftp.cwd("2024-01-01")
                ftp.storbinary("STOR RLC-510A_00_20240101120000.mp4", handle)

        await asyncio.to_thread(camera_upload)
        await _wait_for(lambda: len(received["front_door"]) == 1)
        await asyncio.sleep(0.3)
        after = int(time.time())

    # Then it is handed on exactly once, renamed with the upload time, out of the FTP folder
    [clip] = received["front_door"]
    camera, _, seconds = clip.clip_id.removesuffix(".mp4").rpartition("_")
    assert camera == "front_door" and before <= int(seconds) <= after
    assert clip.camera_name == "front_door" and clip.source_backend == "ftp"
    assert clip.local_path == tmp_path / "clips" / "front_door" / clip.clip_id
    assert clip.local_path.read_bytes() == person_clip.read_bytes()
    assert _files_under(tmp_path / "incoming") == []
    # And a later run finds it in the spool (for recovery and retention)
    later = load_source("ftp", _config(tmp_path, port, "front_door"))
    assert [spooled.clip_id for spooled in later.spooled_clips()] == [clip.clip_id]


async def test_a_clip_id_name_is_kept_and_a_repeat_gets_a_suffix(
    tmp_path: Path, port: int, empty_scene_clip: Path
) -> None:
    # Given an FTP source
    async with _running(_config(tmp_path, port, "front_door")) as received:
        # When the camera uploads the same clip_id-named file twice
        for _ in range(2):
            await asyncio.to_thread(
                _upload,
                port,
                "front_door",
                "front_door/front_door_1700000000.mp4",
                empty_scene_clip,
            )
        await _wait_for(lambda: len(received["front_door"]) == 2)

    # Then the name is kept, its time is the clip's start, and the repeat gets `_2`
    first, second = received["front_door"]
    assert (first.clip_id, second.clip_id) == (
        "front_door_1700000000.mp4",
        "front_door_1700000000_2.mp4",
    )
    assert first.start_ts.timestamp() == 1700000000


@pytest.mark.slow
async def test_three_uploads_of_one_name_at_once_are_three_clips(
    tmp_path: Path, port: int, person_clip: Path
) -> None:
    # Given three different files, and a source
    contents = [person_clip.read_bytes() + bytes([n]) * 1000 for n in range(3)]
    start_together = threading.Barrier(3)

    def slow_upload(content: bytes) -> None:
        with _client(port) as ftp:
            start_together.wait(timeout=5)
            ftp.storbinary(
                "STOR front_door/front_door_1700000000.mp4",
                io.BytesIO(content),
                blocksize=64 * 1024,
                callback=lambda _: time.sleep(0.01),  # so the three transfers overlap
            )

    async with _running(_config(tmp_path, port, "front_door")) as received:
        # When they are uploaded under one name at the same time
        await asyncio.gather(*(asyncio.to_thread(slow_upload, c) for c in contents))
        await _wait_for(lambda: len(received["front_door"]) == 3)

    # Then each upload is a clip of its own, with its own bytes, none spliced
    clips = received["front_door"]
    assert sorted(clip.clip_id for clip in clips) == [
        "front_door_1700000000.mp4",
        "front_door_1700000000_2.mp4",
        "front_door_1700000000_3.mp4",
    ]
    assert sorted(clip.local_path.read_bytes() for clip in clips) == sorted(contents)
    assert _files_under(tmp_path / "incoming") == []


async def test_an_upload_under_a_name_used_before_is_a_new_clip(
    tmp_path: Path, port: int, empty_scene_clip: Path
) -> None:
    # Given a clip_id the state database knows (done, its local copy pruned long ago)
    repository = ClipRepository.from_config(
        StateStoreConfig(dsn_env="HOMESEC_TEST_NO_DSN", sqlite_path=tmp_path / "state.db")
    )
    await repository.start()
    await repository.save(done_state("front_door_1700000000.mp4"))
    try:
        async with _running(
            _config(tmp_path, port, "front_door"), namer=ClipNames(repository)
        ) as received:
            # When the camera (its clock reset) uploads a new clip under that name
            await asyncio.to_thread(
                _upload,
                port,
                "front_door",
                "front_door/front_door_1700000000.mp4",
                empty_scene_clip,
            )
            await _wait_for(lambda: len(received["front_door"]) == 1)
    finally:
        await repository.aclose()

    # Then it is a new clip with the next free name
    [clip] = received["front_door"]
    assert clip.clip_id == "front_door_1700000000_2.mp4"
    assert clip.local_path.read_bytes() == empty_scene_clip.read_bytes()


def _abort_with_abor(ftp: ftplib.FTP, data: socket.socket) -> None:
    ftp.putcmd("ABOR")
    time.sleep(0.3)
    data.close()


def _abort_with_reset(ftp: ftplib.FTP, data: socket.socket) -> None:
    # A camera losing power mid-upload: the data connection is reset, not closed.
    data.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    data.close()


@pytest.mark.slow
@pytest.mark.parametrize("abort", [_abort_with_abor, _abort_with_reset])
async def test_an_aborted_upload_is_never_processed(
    tmp_path: Path,
    port: int,
    person_clip: Path,
    caplog: pytest.LogCaptureFixture,
    abort: Callable[[ftplib.FTP, socket.socket], None],
) -> None:
    # Given an FTP source
    async with _running(_config(tmp_path, port, "front_door")) as received:
        # When a camera sends half a clip and the transfer is aborted
        def partial_upload() -> None:
            ftp = _client(port)
            try:
                ftp.voidcmd("TYPE I")
                data = ftp.transfercmd("STOR front_door/front_door_1700000000.mp4")
                data.sendall(person_clip.read_bytes()[:1_000_000])
                time.sleep(0.2)
                abort(ftp, data)
            finally:
                ftp.close()

        await asyncio.to_thread(partial_upload)
        await _wait_for(lambda: "did not complete" in caplog.text)
        await asyncio.sleep(0.3)

    # Then nothing is handed on and the partial file is gone
    assert received["front_door"] == []
    assert _files_under(tmp_path) == []


REFUSED = [
    ("STOR", "../../outside.mp4"),
    ("STOR", "/etc/cron.d/evil.mp4"),
    ("STOR", "front_door/../backyard/x.mp4"),
    ("STOR", "front_door\\..\\x.mp4"),
    ("STOR", "front_door/.hidden.mp4"),
    ("STOR", "front_door/a\x01b.mp4"),
    ("STOR", "front_door/payload.sh"),
    ("STOR", "backyard/someone_else.mp4"),
    ("STOR", "loose_file.mp4"),
    ("APPE", "front_door/front_door_1700000000.mp4"),
    ("MKD", "../escape"),
    ("CWD", "../../.."),
]


async def test_traversal_absolute_paths_and_odd_names_are_refused_and_logged(
    tmp_path: Path, port: int, empty_scene_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given two cameras on one server
    configs = [_config(tmp_path, port, "front_door"), _config(tmp_path, port, "backyard")]
    async with _running(*configs) as received:
        # When the front door's user tries to write outside its own folder or with odd names
        def attempts() -> list[str]:
            replies = []
            with _client(port) as ftp:
                for command, path in REFUSED:
                    with pytest.raises(ftplib.error_perm) as refused:
                        if command in ("STOR", "APPE"):
                            with empty_scene_clip.open("rb") as handle:
                                ftp.storbinary(f"{command} {path}", handle)
                        else:
                            ftp.sendcmd(f"{command} {path}")
                    replies.append(str(refused.value))
            return replies

        replies = await asyncio.to_thread(attempts)
        await asyncio.sleep(0.2)

    # Then each is refused with a 550, logged, and nothing was written anywhere
    assert all(reply.startswith("550 Refused") for reply in replies), replies
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.msg]
    assert len(refusals) == len(REFUSED)
    assert received == {"front_door": [], "backyard": []}
    assert _files_under(tmp_path) == []
    assert not (tmp_path.parent / "outside.mp4").exists()


@pytest.mark.slow
async def test_wrong_passwords_and_anonymous_logins_are_refused_and_logged(
    tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an FTP source
    async with _running(_config(tmp_path, port, "front_door")):
        # When someone tries a wrong password, an unknown user and an anonymous login
        def logins() -> list[str]:
            replies = []
            for user, password in [
                ("cam-front", "guess-123"),
                ("intruder", "front-secret-1"),
                ("anonymous", "me@example.com"),
            ]:
                with _client(port, camera=None) as ftp, pytest.raises(ftplib.error_perm) as err:
                    ftp.login(user, password)
                replies.append(str(err.value))
            return replies

        replies = await asyncio.to_thread(logins)
        await _wait_for(lambda: caplog.text.count("FTP login refused") == 3)

    # Then every login gets a 530, each is logged with the user name, and no password is logged
    assert all(reply.startswith("530") for reply in replies), replies
    assert "'cam-front'" in caplog.text and "'intruder'" in caplog.text
    assert "anonymous login" in caplog.text
    assert "guess-123" not in caplog.text and "front-secret-1" not in caplog.text


@pytest.mark.parametrize(
    ("user", "password", "problem"),
    [
        ("anonymous", "pw-12345", "anonymous FTP users are not allowed"),
        ("FTP", "pw-12345", "anonymous FTP users are not allowed"),
        ("", "pw-12345", "anonymous FTP users are not allowed"),
        ("cam-front", "", "the FTP password is empty"),
    ],
    ids=["anonymous", "ftp", "empty-user", "empty-password"],
)
def test_an_anonymous_user_or_an_empty_password_is_refused_in_the_config(
    tmp_path: Path,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    password: str,
    problem: str,
) -> None:
    # Given env vars that would open the server to anyone
    monkeypatch.setenv("FTP_USER_FRONT_DOOR", user)
    monkeypatch.setenv("FTP_PASSWORD_FRONT_DOOR", password)

    # When the source's config is validated
    # Then it is refused before any server starts, naming the env var, not the value
    with pytest.raises(ValidationError, match=problem) as refused:
        validate_plugin_config(PluginType.SOURCE, "ftp", _config(tmp_path, port, "front_door"))
    assert "_FRONT_DOOR" in str(refused.value.errors()[0]["msg"])


async def test_two_cameras_in_two_folders_map_to_their_camera_names(
    tmp_path: Path, port: int, person_clip: Path, empty_scene_clip: Path
) -> None:
    # Given two cameras sharing one server, each with its own folder and user
    configs = [
        _config(tmp_path, port, "front_door", ftp_subdir="porch"),
        _config(tmp_path, port, "backyard", ftp_subdir="garden"),
    ]
    async with _running(*configs) as received:
        # When each uploads into its folder
        await asyncio.gather(
            asyncio.to_thread(_upload, port, "front_door", "clip1.mp4", person_clip, "/porch"),
            asyncio.to_thread(_upload, port, "backyard", "clip2.mp4", empty_scene_clip, "/garden"),
        )
        await _wait_for(lambda: len(received["front_door"]) == len(received["backyard"]) == 1)

    # Then each clip belongs to the camera of its folder
    [front], [back] = received["front_door"], received["backyard"]
    assert front.clip_id.startswith("front_door_") and front.camera_name == "front_door"
    assert back.clip_id.startswith("backyard_") and back.camera_name == "backyard"
    assert front.local_path.read_bytes() == person_clip.read_bytes()
    assert back.local_path.read_bytes() == empty_scene_clip.read_bytes()


async def test_an_oversized_upload_is_refused_and_deleted(
    tmp_path: Path, port: int, person_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a camera whose uploads may not exceed 1 MB
    config = _config(tmp_path, port, "front_door", max_file_size_bytes=1_000_000)
    async with _running(config) as received:
        # When it uploads a 4.5 MB clip
        with pytest.raises(ftplib.all_errors):
            await asyncio.to_thread(_upload, port, "front_door", "front_door/big.mp4", person_clip)
        await _wait_for(lambda: "over the size limit" in caplog.text)

    # Then the upload was cut off, deleted and never handed on
    assert received["front_door"] == []
    assert _files_under(tmp_path) == []


@pytest.mark.slow
async def test_health_follows_the_server_and_checks_renew_the_heartbeat(
    tmp_path: Path, port: int
) -> None:
    # Given a started FTP source with a fast connection check
    source = load_source("ftp", _config(tmp_path, port, "front_door"))
    source.use_namer(ClipNames())
    await source.start()
    try:
        first = source.last_heartbeat()
        await asyncio.sleep(0.35)

        # Then it is healthy and the heartbeat moves on
        assert source.is_healthy()
        assert source.last_heartbeat() > first > 0
    finally:
        await source.aclose()

    # When it stops, it is no longer healthy and the port is free again
    assert not source.is_healthy()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_passive_data_ports_come_from_the_configured_range(tmp_path: Path, port: int) -> None:
    # Given a server with a passive port range
    first = free_port()
    config = _config(tmp_path, port, "front_door", passive_ports=[first, first])
    async with _running(config):
        # When a client asks for a passive data port
        def passive_port() -> int:
            with _client(port) as ftp:
                return int(ftp.makepasv()[1])

        # Then it is one from the range
        assert await asyncio.to_thread(passive_port) == first


async def test_cameras_sharing_a_port_must_share_its_settings(tmp_path: Path, port: int) -> None:
    # Given a running camera on a port
    async with _running(_config(tmp_path, port, "front_door")):
        # When a second camera on that port names another root folder
        other = load_source("ftp", _config(tmp_path / "elsewhere", port, "backyard"))
        other.use_namer(ClipNames())

        # Then it cannot start
        with pytest.raises(StartupError, match="shares the FTP server"):
            await other.start()


async def test_a_partial_upload_left_by_a_crash_is_discarded_at_start(
    tmp_path: Path, port: int
) -> None:
    # Given a partial upload left in the camera's folder by a previous run
    leftover = tmp_path / "incoming" / "front_door" / "front_door_1700000000.mp4"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a clip")

    # When the source starts
    async with _running(_config(tmp_path, port, "front_door")) as received:
        await asyncio.sleep(0.2)

    # Then it is deleted, not handed on
    assert not leftover.exists()
    assert received["front_door"] == []
