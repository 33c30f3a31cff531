"""The camera's live picture (the camera page in the UI): the latest frame, while it flows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np

from homesec.interfaces import LiveView
from tests.plugins.sources.rtsp.conftest import StartSource, wait_until
from tests.services.rtsp_server import MakeCamera


async def test_a_live_camera_shows_its_latest_frame_until_it_stops(
    make_rtsp_camera: MakeCamera, still_footage: Path, start_rtsp_source: StartSource
) -> None:
    # Given a source watching a camera
    camera = make_rtsp_camera(still_footage)
    running = await start_rtsp_source(camera.url, frame_timeout_s=1.0)
    await wait_until(running.source.is_healthy, timeout=20, what="frames")
    assert isinstance(running.source, LiveView)

    # When its live picture is asked for while frames flow, and after the camera stopped
    picture = await running.source.live_picture()
    camera.close()
    await asyncio.sleep(1.5)
    after = await running.source.live_picture()

    # Then the first is a JPEG of the motion stream (640 wide by default), and once nothing
    # came for the frame timeout there is none (an old picture would mislead)
    assert picture is not None and picture[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape[:2] == (360, 640)
    assert after is None
