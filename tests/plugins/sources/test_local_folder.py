"""local_folder source: finished files only, clip_id naming, a manifest that survives restarts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

from homesec.models.clip import Clip
from homesec.plugins.registry import load_source

CAMERA = "front_door"


def _source(watch_dir: Path, settle_s: float = 0.2):  # type: ignore[no-untyped-def]
    return load_source(
        "local_folder",
        {
            "camera_name": CAMERA,
            "watch_dir": str(watch_dir),
            "poll_interval_s": 0.05,
            "settle_s": settle_s,
        },
    )


async def _collect(watch_dir: Path, seconds: float, settle_s: float = 0.2) -> list[Clip]:
    source = _source(watch_dir, settle_s)
    clips: list[Clip] = []
    source.register_callback(clips.append)
    await source.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await source.stop()
    return clips


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
        await source.stop()

    # Then the finished file is handed on, whole
    assert [clip.clip_id for clip in clips] == [target.name]
    assert target.stat().st_size == len(data)


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
    await source.stop()

    # Then it was healthy with a recent heartbeat, and is not once stopped
    assert healthy_running is True
    assert heartbeat > 0
    assert source.is_healthy() is False
