"""rtsp source, faults: a camera that vanishes or hangs, wrong URLs and passwords. The source
finishes what it recorded, reconnects by itself with growing waits, and never logs a secret."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from homesec.video.clip import probe_clip
from tests.plugins.sources.rtsp.conftest import StartSource, retry_delays, wait_until
from tests.services.rtsp_server import MakeCamera, ffmpeg_children

OUTAGE_S = 20.0
# A HomeSec that records until it is killed: prints "recording" once frames flow.
_RECORD_UNTIL_KILLED = """
import asyncio, sys
from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_source

async def main():
    config = dict(camera_name="cam", rtsp_url_env="CRASH_URL", recordings_dir=sys.argv[1])
    source = load_source("rtsp", {**config, "hwaccel": "off", "stop_delay_s": 30.0})
    source.use_namer(ClipNames())
    await source.start()
    while not source.is_healthy():
        await asyncio.sleep(0.1)
    print("recording", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""
USER = "admin"
PASSWORD = "Corr3ct-h0rse"
WRONG_PASSWORD = "wr0ng-Battery"


async def test_a_camera_that_vanishes_mid_recording_gives_its_clip_and_is_reconnected(
    make_rtsp_camera: MakeCamera,
    media_dir: Path,
    start_rtsp_source: StartSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="homesec")
    # Given a source recording people who keep walking (its clip would last a minute)
    camera = make_rtsp_camera(media_dir / "vtest_h264.mp4")
    running = await start_rtsp_source(camera.url, stop_delay_s=30.0, max_clip_s=60.0)
    await wait_until(running.source.is_healthy, timeout=20, what="frames")
    await asyncio.sleep(2.0)

    # When the camera loses power
    camera.vanish()
    vanished_at = time.monotonic()

    # Then the partial clip is finished and handed on at once, and it plays
    (clip,) = await running.wait_for_clips(1, timeout=10)
    duration = probe_clip(clip.local_path).duration_s
    assert duration is not None and duration >= 2.0
    # And the source turns unhealthy and keeps trying, waiting longer each time
    await wait_until(lambda: not running.source.is_healthy(), timeout=10, what="unhealthy")
    await asyncio.sleep(vanished_at + OUTAGE_S - time.monotonic())
    delays = retry_delays(caplog.records, "cam")
    assert len(delays) >= 4
    assert max(delays) > 2 * delays[0]

    # When the camera comes back, 20 s after it went
    camera.start()

    # Then the source reconnects by itself and is healthy again, with one ffmpeg running
    await wait_until(running.source.is_healthy, timeout=20, what="healthy again")
    assert len(ffmpeg_children()) == 1


async def test_a_hung_camera_is_detected_and_recovered(
    make_rtsp_camera: MakeCamera,
    media_dir: Path,
    start_rtsp_source: StartSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="homesec")
    # Given a healthy source (no frame for 1 s means a stall)
    camera = make_rtsp_camera(media_dir / "vtest_h264.mp4")
    running = await start_rtsp_source(camera.url, frame_timeout_s=1.0)
    await wait_until(running.source.is_healthy, timeout=20, what="frames")

    # When the camera hangs: its connection stays open, but nothing flows
    camera.freeze()

    # Then the stall is noticed and logged, and the source turns unhealthy
    await wait_until(
        lambda: any("stalled" in record.getMessage() for record in caplog.records),
        timeout=10,
        what="the stall in the log",
    )
    await wait_until(lambda: not running.source.is_healthy(), timeout=10, what="unhealthy")
    # And the stalled ffmpeg was stopped and reaped (at most the next attempt runs)
    assert len(ffmpeg_children()) <= 1

    # When the camera resumes
    camera.thaw()

    # Then the source reconnects by itself and is healthy again
    await wait_until(running.source.is_healthy, timeout=20, what="healthy again")


async def test_wrong_password_or_url_is_reported_clearly_and_no_secret_is_logged(
    make_rtsp_camera: MakeCamera,
    still_footage: Path,
    start_rtsp_source: StartSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # ffmpeg command lines and output included
    # Given a camera that asks for a user and password
    camera = make_rtsp_camera(still_footage, user=USER, password=PASSWORD)

    # When three sources connect: right password, wrong password, wrong path
    good = await start_rtsp_source(camera.url_with(USER, PASSWORD), "good")
    await start_rtsp_source(camera.url_with(USER, WRONG_PASSWORD), "bad_password")
    lost_url = camera.url_with(USER, PASSWORD).replace("/cam", "/nothing-here")
    await start_rtsp_source(lost_url, "bad_path")
    await wait_until(good.source.is_healthy, timeout=20, what="the good source")
    await wait_until(
        lambda: all(
            len(retry_delays(caplog.records, name)) >= 3 for name in ("bad_password", "bad_path")
        ),
        timeout=20,
        what="three attempts of each bad source",
    )

    # Then each failure says why, and is retried with growing waits
    for name, reason in (("bad_password", "401"), ("bad_path", "404")):
        lines = [r.getMessage() for r in caplog.records if getattr(r, "camera_name", "") == name]
        assert any(reason in line and "reconnecting in" in line for line in lines), lines
        delays = retry_delays(caplog.records, name)
        assert delays[2] > delays[0]
    # And no log line shows a password, though the redacted URLs are there
    logged = "\n".join(caplog.text.splitlines() + [r.getMessage() for r in caplog.records])
    assert PASSWORD not in logged
    assert WRONG_PASSWORD not in logged
    assert f"rtsp://***@127.0.0.1:{camera.port}/cam" in logged


async def test_a_clip_cut_short_by_a_crash_is_finished_at_the_next_start(
    make_rtsp_camera: MakeCamera,
    media_dir: Path,
    start_rtsp_source: StartSource,
    tmp_path: Path,
) -> None:
    # Given a HomeSec process recording people walking
    camera = make_rtsp_camera(media_dir / "vtest_h264.mp4")
    recordings_dir = tmp_path / "cam"
    crashing = subprocess.Popen(
        [sys.executable, "-c", _RECORD_UNTIL_KILLED, str(recordings_dir)],
        env={**os.environ, "CRASH_URL": camera.url},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert crashing.stdout is not None and crashing.stdout.readline() == "recording\n"
        await asyncio.sleep(2.0)

        # When it is killed mid-recording (no chance to finish the clip)
        crashing.kill()
    finally:
        crashing.kill()
        crashing.wait()

    # Then the next start finishes the interrupted clip and hands it on, playable
    running = await start_rtsp_source(camera.url)
    assert running.recordings_dir == recordings_dir
    (clip,) = await running.wait_for_clips(1, timeout=15)
    duration = probe_clip(clip.local_path).duration_s
    assert duration is not None and duration >= 1.0
