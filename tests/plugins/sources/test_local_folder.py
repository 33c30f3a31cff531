"""local_folder source: finished files only, clip_id naming, a manifest that survives restarts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from homesec.interfaces import ClipSource
from homesec.models.clip import Clip
from homesec.models.config import StateStoreConfig
from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_source, load_storage
from homesec.repository.clip_repository import ClipRepository
from tests.repository.builders import done_state

CAMERA = "front_door"


def _source(watch_dir: Path, settle_s: float = 0.2, **config: object) -> ClipSource:
    source = load_source(
        "local_folder",
        {
            "camera_name": CAMERA,
            "watch_dir": str(watch_dir),
            "poll_interval_s": 0.05,
            "settle_s": settle_s,
            **config,
        },
    )
    source.use_namer(ClipNames())
    return source


async def _collect(watch_dir: Path, seconds: float, settle_s: float = 0.2) -> list[Clip]:
    source = _source(watch_dir, settle_s)
    clips: list[Clip] = []
    source.register_callback(clips.append)
    await source.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await source.aclose()
    return clips


@pytest.mark.slow
async def test_a_finished_clip_is_handed_on_once(tmp_path: Path, person_clip: Path) -> None:
    # Given a clip already in the folder
    shutil.copyfile(person_clip, tmp_path / "front_door_1700000000.mp4")

    # When the source runs twice (a restart)
    first = await _collect(tmp_path, 0.6)
    second = await _collect(tmp_path, 0.6)

    # Then it was handed on the first time only, with its name as clip_id
    assert [clip.clip_id for clip in first] == ["front_door_1700000000.mp4"]
    assert second == []
    assert first[0].camera_name == CAMERA
    assert first[0].start_ts.timestamp() == 1700000000
    manifest = json.loads((tmp_path / ".homesec_state.json").read_text())
    assert manifest["processed"] == ["front_door_1700000000.mp4"]


@pytest.mark.slow
async def test_a_file_still_being_written_is_not_picked_up(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a source watching the folder
    source = _source(tmp_path, settle_s=0.3)
    clips: list[Clip] = []
    source.register_callback(clips.append)
    await source.start()
    try:
        # When a file is written slowly, chunk by chunk
        data = person_clip.read_bytes()
        target = tmp_path / "front_door_1700000001.mp4"
        with target.open("wb") as handle:
            for offset in range(0, len(data), len(data) // 8):
                handle.write(data[offset : offset + len(data) // 8])
                handle.flush()
                await asyncio.sleep(0.15)
                # Then nothing is handed on while it grows
                assert clips == []
        await asyncio.sleep(1.0)
    finally:
        await source.aclose()

    # Then the finished file is handed on, whole
    assert [clip.clip_id for clip in clips] == [target.name]
    assert target.stat().st_size == len(data)


@pytest.mark.slow
async def test_odd_names_are_renamed_to_the_clip_id_rule(tmp_path: Path, person_clip: Path) -> None:
    # Given two files with names that do not follow the rule, with the same mtime
    hostile = tmp_path / "Cam 1 ; rm -rf $HOME .MP4"
    other = tmp_path / "record.mp4"
    for path in (hostile, other):
        shutil.copyfile(person_clip, path)
        os.utime(path, (1700000500, 1700000500))

    # When the source runs
    clips = await _collect(tmp_path, 0.6)

    # Then both get camera + upload second names, the second with a deterministic suffix
    names = sorted(clip.clip_id for clip in clips)
    assert names == ["front_door_1700000500.mp4", "front_door_1700000500_2.mp4"]
    assert all((tmp_path / name).is_file() for name in names)
    assert not hostile.exists() and not other.exists()


@pytest.mark.slow
async def test_non_video_hidden_and_empty_files_are_ignored(tmp_path: Path) -> None:
    # Given a text file, a hidden partial upload, an empty clip and a symlink
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".front_door_1700000000.mp4.part").write_bytes(b"x" * 100)
    (tmp_path / "front_door_1700000002.mp4").write_bytes(b"")
    (tmp_path / "link.mp4").symlink_to("/etc/passwd")

    # When the source runs
    clips = await _collect(tmp_path, 0.6)

    # Then nothing is handed on
    assert clips == []


@pytest.mark.slow
async def test_spooled_clips_lists_handed_on_files_still_on_disk(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given two clips handed on, one of them later deleted
    for ts in (1700000010, 1700000020):
        shutil.copyfile(person_clip, tmp_path / f"front_door_{ts}.mp4")
    await _collect(tmp_path, 0.6)
    (tmp_path / "front_door_1700000010.mp4").unlink()

    # When a new source instance lists its spool before it starts (as recovery does)
    spooled = _source(tmp_path).spooled_clips()

    # Then only the file still present is listed
    assert [clip.clip_id for clip in spooled] == ["front_door_1700000020.mp4"]


async def test_health_and_heartbeat_follow_the_scan_loop(tmp_path: Path) -> None:
    # Given a running source
    source = _source(tmp_path)
    assert source.is_healthy() is False
    await source.start()
    await asyncio.sleep(0.2)

    # When it is asked while running, then after stop
    healthy_running = source.is_healthy()
    heartbeat = source.last_heartbeat()
    await source.aclose()

    # Then it was healthy with a recent heartbeat, and is not once stopped
    assert healthy_running is True
    assert heartbeat > 0
    assert source.is_healthy() is False


async def _watching(
    watch_dir: Path, namer: ClipNames, **config: object
) -> tuple[ClipSource, list[Clip]]:
    source = _source(watch_dir, settle_s=0.1, **config)
    source.use_namer(namer)
    clips: list[Clip] = []
    source.register_callback(clips.append)
    await source.start()
    return source, clips


async def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_file_under_a_name_the_state_knows_is_a_new_clip(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a clip_id the state database knows (done; its local copy was pruned)
    repository = ClipRepository.from_config(
        StateStoreConfig(dsn_env="HOMESEC_TEST_NO_DSN", sqlite_path=tmp_path / "state.db")
    )
    await repository.start()
    await repository.save(done_state("front_door_1700000000.mp4"))
    inbox = tmp_path / "inbox"
    source, clips = await _watching(inbox, ClipNames(repository))
    try:
        # When a new file arrives under that name (a camera whose clock went back)
        shutil.copyfile(person_clip, inbox / "front_door_1700000000.mp4")
        await _until(lambda: len(clips) == 1)
    finally:
        await source.aclose()
        await repository.aclose()

    # Then it is handed on as a new clip with the next free name, renamed in the folder
    [clip] = clips
    assert clip.clip_id == "front_door_1700000000_2.mp4"
    assert sorted(p.name for p in inbox.glob("*.mp4")) == ["front_door_1700000000_2.mp4"]


async def test_a_file_under_a_name_storage_holds_is_a_new_clip(
    tmp_path: Path, person_clip: Path, empty_scene_clip: Path
) -> None:
    # Given storage holding an older clip under a name, and no state of it at all
    storage = load_storage("local", {"root": str(tmp_path / "storage")})
    await storage.put(empty_scene_clip, "front_door/front_door_1700000000.mp4")
    inbox = tmp_path / "inbox"
    source, clips = await _watching(inbox, ClipNames(storage=storage))
    try:
        # When a new file arrives under that name
        shutil.copyfile(person_clip, inbox / "front_door_1700000000.mp4")
        await _until(lambda: len(clips) == 1)
    finally:
        await source.aclose()

    # Then it gets a name of its own: the stored clip is never overwritten
    assert clips[0].clip_id == "front_door_1700000000_2.mp4"


async def test_a_new_file_under_a_pruned_name_is_taken_in_the_same_run(
    tmp_path: Path, person_clip: Path, empty_scene_clip: Path
) -> None:
    # Given a running source that handed on a clip, whose local copy was then pruned
    inbox = tmp_path / "inbox"
    source, clips = await _watching(inbox, ClipNames())
    try:
        shutil.copyfile(person_clip, inbox / "front_door_1700000000.mp4")
        await _until(lambda: len(clips) == 1)
        (inbox / "front_door_1700000000.mp4").unlink()

        # When another file arrives under the same name
        shutil.copyfile(empty_scene_clip, inbox / "front_door_1700000000.mp4")
        await _until(lambda: len(clips) == 2)
    finally:
        await source.aclose()

    # Then it is taken as a clip of its own
    assert [clip.clip_id for clip in clips] == [
        "front_door_1700000000.mp4",
        "front_door_1700000000_2.mp4",
    ]
    assert clips[1].local_path.read_bytes() == empty_scene_clip.read_bytes()


@pytest.mark.slow
async def test_empty_and_oversized_files_are_reported_once_and_not_taken(
    tmp_path: Path, person_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a source with a size limit, an empty file and a sparse 20 GB file in its folder
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "empty.mp4").touch()
    with (inbox / "huge.mp4").open("wb") as huge:
        huge.truncate(20 * 2**30)
    caplog.set_level(logging.WARNING, logger="homesec.plugins.sources.local_folder")
    source, clips = await _watching(inbox, ClipNames())
    try:
        # When the source scans many times, and a normal clip arrives too
        shutil.copyfile(person_clip, inbox / "front_door_1700000000.mp4")
        await _until(lambda: len(clips) == 1)
        await asyncio.sleep(0.5)
    finally:
        await source.aclose()

    # Then only the normal clip was taken; each refused file was reported once, with why
    assert [clip.clip_id for clip in clips] == ["front_door_1700000000.mp4"]
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Not taking")]
    assert len(reports) == 2
    assert any("'empty.mp4'" in line and "empty" in line for line in reports)
    assert any("'huge.mp4'" in line and "max_file_size_bytes" in line for line in reports)
    assert (inbox / "huge.mp4").exists() and (inbox / "empty.mp4").exists()
