"""rtsp source, recording: clips when something moves, with a pre-roll, as playable MP4s named
by the clip_id rule; nothing for a still scene or motion inside a mask."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from homesec.models.clip import parse_clip_id
from homesec.video.clip import probe_clip
from tests.plugins.sources.rtsp.conftest import (
    StartSource,
    activity,
    top_level_atoms,
    wait_until,
)
from tests.services.rtsp_server import MakeCamera, ffmpeg_children

MOTION_SHARE = 0.002
LEFT_HALF = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
RIGHT_HALF = [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]


async def test_people_walking_in_give_a_playable_clip_that_starts_before_them(
    make_rtsp_camera: MakeCamera, walk_in_footage: Path, start_rtsp_source: StartSource
) -> None:
    # Given a camera showing a still scene for 4 s, then people walking for 4 s
    camera = make_rtsp_camera(walk_in_footage)
    connected_at = time.time()

    # When a source with a 3 s pre-roll watches it until its first clip is handed on
    running = await start_rtsp_source(camera.url, pre_roll_s=3.0)
    (clip,) = await running.wait_for_clips(1, timeout=40)
    await running.source.aclose()

    # Then the clip is named after the camera and the second it starts, in its folder
    name = parse_clip_id(clip.clip_id, "cam")
    assert name is not None and name.n == 1 and name.extension == ".mp4"
    assert connected_at - 1 <= name.unix_seconds <= clip.start_ts.timestamp() + 1
    assert clip.local_path == running.recordings_dir / clip.clip_id
    assert clip.source_backend == "rtsp"
    # And it is an H.264 MP4 with its index first (plays while it downloads)
    info = probe_clip(clip.local_path)
    assert info.codec == "h264" and info.duration_s is not None
    atoms = top_level_atoms(clip.local_path)
    assert atoms.index("moov") < atoms.index("mdat")
    # And it starts about 3 s before the people move (the pre-roll)...
    moving = [t for t, share in activity(clip.local_path) if share > MOTION_SHARE]
    assert moving, "the clip shows no motion"
    assert 2.0 <= moving[0] <= 4.5
    # ...and covers their walk
    assert moving[-1] - moving[0] >= 3.0
    assert clip.duration_s == pytest.approx(info.duration_s, abs=0.2)
    # And it is in the spool, and no ffmpeg is left running
    assert clip.clip_id in [spooled.clip_id for spooled in running.source.spooled_clips()]
    assert ffmpeg_children() == []


async def test_a_still_scene_records_nothing_and_stays_healthy(
    make_rtsp_camera: MakeCamera, still_footage: Path, start_rtsp_source: StartSource
) -> None:
    # Given a camera showing a frozen picture of an empty lawn
    camera = make_rtsp_camera(still_footage)

    # When a source watches it for a while
    running = await start_rtsp_source(camera.url)
    await wait_until(running.source.is_healthy, timeout=20, what="frames")
    await asyncio.sleep(3.0)

    # Then no clip was recorded, the source is healthy, its heartbeat the last frame's time
    assert running.clips == []
    assert running.source.spooled_clips() == []
    assert running.source.is_healthy()
    assert time.time() - running.source.last_heartbeat() < 1.0


async def test_motion_inside_a_mask_is_ignored(
    make_rtsp_camera: MakeCamera, moving_box_footage: Path, start_rtsp_source: StartSource
) -> None:
    # Given a camera where a box moves in the left half of the picture only
    camera = make_rtsp_camera(moving_box_footage)

    # When one source masks the left half and another the right half
    masked = await start_rtsp_source(camera.url, "masked", motion={"masks": [LEFT_HALF]})
    watched = await start_rtsp_source(
        camera.url, "watched", max_clip_s=5.0, motion={"masks": [RIGHT_HALF]}
    )
    await watched.wait_for_clips(1, timeout=40)
    assert masked.source.is_healthy()  # it saw the frames too
    await masked.source.aclose()

    # Then only the source that sees the box recorded it
    assert masked.clips == []
    assert masked.source.spooled_clips() == []
    assert len(watched.clips) >= 1


async def test_long_motion_is_cut_at_max_clip_s_and_a_taken_name_gets_a_suffix(
    make_rtsp_camera: MakeCamera,
    media_dir: Path,
    start_rtsp_source: StartSource,
    tmp_path: Path,
) -> None:
    # Given people walking the whole time, and every clip name of the next minute taken
    camera = make_rtsp_camera(media_dir / "vtest_h264.mp4")
    recordings_dir = tmp_path / "cam"
    recordings_dir.mkdir()
    now = int(time.time())
    for second in range(now - 5, now + 60):
        (recordings_dir / f"cam_{second}.mp4").write_bytes(b"taken")

    # When a source cuts clips at 3 s
    running = await start_rtsp_source(camera.url, pre_roll_s=1.0, max_clip_s=3.0)
    assert running.recordings_dir == recordings_dir
    first, second_clip = await running.wait_for_clips(2, timeout=40)

    # Then each clip is at most about 3 s long, and the second follows the first
    for clip in (first, second_clip):
        duration = probe_clip(clip.local_path).duration_s
        assert duration is not None and 1.0 <= duration <= 4.5
    gap = second_clip.start_ts.timestamp() - first.end_ts.timestamp()
    assert abs(gap) <= 0.6
    # And each got the `_2` suffix of its taken second
    for clip in (first, second_clip):
        name = parse_clip_id(clip.clip_id, "cam")
        assert name is not None and name.n == 2


async def test_unusable_hardware_decoding_falls_back_to_software(
    make_rtsp_camera: MakeCamera,
    still_footage: Path,
    start_rtsp_source: StartSource,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an accelerator this ffmpeg was built with that cannot work here: VDPAU needs an
    # X display, and ffmpeg is started without one (on any machine, GPU or not)
    monkeypatch.delenv("DISPLAY", raising=False)
    caplog.set_level(logging.INFO, logger="homesec")
    camera = make_rtsp_camera(still_footage)

    # When a source is told to decode with VDPAU
    running = await start_rtsp_source(camera.url, hwaccel="vdpau")

    # Then it decodes in software instead, and says so
    await wait_until(running.source.is_healthy, timeout=20, what="frames")
    assert any("vdpau" in record.getMessage() for record in caplog.records)
