"""Alert latency over real parts: to the detection event, and to the final alert.

The real detector (YOLOX-nano on ONNX Runtime, the shared test model), real Postgres state,
the real MQTT notifier through the local Mosquitto, and a local OpenAI-compatible server that
answers after a fixed delay (the VLM's own latency).

    uv run python -m bench.latency [--clips 8] [--vlm-delay 5]
    uv run python -m bench.latency --source rtsp [--appearances 8] [--vlm-delay 5]

`--source clip` (default): from the moment a finalized clip is handed to the pipeline (one at
a time, 20 s at 1080p with people from the first frame).

`--source rtsp`: from the moment people appear on a live stream. A camera on loopback
(tests/services/rtsp_server.py: H.264, 640x360, 10 fps, a keyframe every second) loops
footage of an empty lawn, then people (tests/services/appearing_person.py); the whole
service runs (HomeSecApp with the `rtsp` source: motion, recording, early detection on the
segments of the clip being recorded). The empty part outlasts `stop_delay_s`, so each
appearance makes a clip of its own. The appearance moment is taken on the wire: a watcher
is a second client of the same stream (the server sends both clients the same packets),
decodes each frame as it arrives and tells the two scenes apart (the nearer of two reference
thumbnails, one per scene); the arrival of the first people frame after an empty one is the
appearance. Decoding a frame of this size takes about a millisecond, so the watcher sees it
as early as the service can.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
from tests.fakes.running import running_app
from tests.services.appearing_person import SceneTeller, make_appearing_person_footage
from tests.services.openai_server import ScriptedReply, serve_openai
from tests.services.rtsp_server import RTSPCamera

from bench._support import MEDIA, MODELS, MQTTStopwatch, percentile, postgres_database
from homesec.app import build_components
from homesec.models.clip import Clip
from homesec.models.config import Config

# The empty scene outlasts STOP_DELAY_S (one clip per appearance), and a loop of 123 frames
# moves each appearance 3 frames along the 1 s keyframe interval (and so the segments).
EMPTY_S = 8.3
PEOPLE_S = 4.0
STOP_DELAY_S = 2.0
TARGET_LIVE_DETECTION_S = 2.0
_CAMERA_URL_ENV = "HOMESEC_BENCH_CAMERA_URL"


def _config(work: Path, topic: str, vlm_url: str, source: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "cameras": [{"name": "front_door", "source": source}],
            "storage": {"backend": "local", "config": {"root": str(work / "storage")}},
            "state_store": {"dsn_env": "HOMESEC_BENCH_DSN"},
            "filter": {
                "backend": "yolo",
                "config": {"model": str(MODELS / "yolox_nano.onnx"), "classes": ["person"]},
            },
            "vlm": {
                "backend": "openai",
                "run_mode": "trigger_only",
                "config": {"base_url": vlm_url, "model": "bench-vlm"},
            },
            "alert_policy": {"backend": "default", "config": {"min_risk_level": "low"}},
            "notifiers": [
                {
                    "backend": "mqtt",
                    "on_detection": True,
                    "config": {
                        "host": "127.0.0.1",
                        "topic_template": topic + "/alerts/{camera_name}",
                        "detection_topic_template": topic + "/detections/{camera_name}",
                    },
                }
            ],
            "server": {"enabled": False},
            "pipeline": {"work_dir": str(work / "work")},
        }
    )


def _clip(work: Path, ts: int) -> Clip:
    path = work / f"front_door_{ts}.mp4"
    shutil.copyfile(MEDIA / "front_door_1700000000.mp4", path)
    start = datetime.fromtimestamp(ts, UTC)
    return Clip(
        clip_id=path.name,
        camera_name="front_door",
        local_path=path,
        start_ts=start,
        end_ts=start,
        duration_s=20.0,
        source_backend="bench",
    )


async def _run_clips(count: int, vlm_delay_s: float) -> None:
    topic = f"homesec-bench/{uuid.uuid4().hex[:8]}"
    detections: list[float] = []
    alerts: list[float] = []
    with serve_openai() as vlm, tempfile.TemporaryDirectory() as tmp:
        vlm.default_reply = ScriptedReply.analysis(delay_s=vlm_delay_s, risk_level="high")
        source = {"backend": "local_folder", "config": {"watch_dir": tmp}}
        async with postgres_database("HOMESEC_BENCH_DSN"):
            components = build_components(_config(Path(tmp), topic, vlm.base_url, source))
            await components.start()
            async with MQTTStopwatch(f"{topic}/#") as stopwatch:
                for i in range(count + 1):
                    clip = _clip(Path(tmp), 1_700_000_000 + i)
                    start = time.perf_counter()
                    components.pipeline.submit(clip)
                    detected = await stopwatch.wait_for("detections", clip.clip_id)
                    alerted = await stopwatch.wait_for("alerts", clip.clip_id)
                    if i > 0:  # the first clip warms the detector's worker up
                        detections.append(detected - start)
                        alerts.append(alerted - start)
            await components.aclose()

    print(f"alert latency from clip finalized ({count} clips, 20 s 1080p, YOLOX-nano, Postgres)")
    _report(
        detections,
        alerts,
        detection_target="target < 1 s",
        alert_note=f"target < VLM delay {vlm_delay_s:g} s + 1 s",
    )


class AppearanceWatcher:
    """A second client of the camera: the perf_counter times at which people appeared."""

    def __init__(self, url: str, scenes: SceneTeller) -> None:
        self._url = url
        self._scenes = scenes
        self.appearances: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="appearance-watcher")

    def __enter__(self) -> AppearanceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        options = {"rtsp_transport": "tcp", "timeout": "5000000"}  # microseconds
        with av.open(self._url, options=options) as container:
            # One decoding thread: frame threads would hold each frame back a few frames.
            container.streams.video[0].thread_count = 1
            people = True  # the first people frame seen is not an appearance: joined mid-way
            for frame in container.decode(video=0):
                arrived = time.perf_counter()
                if self._stop.is_set():
                    return
                picture = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
                now_people = self._scenes.is_people_scene(picture)
                if now_people and not people:
                    self.appearances.append(arrived)
                people = now_people


@dataclass(frozen=True)
class _Timed:
    detected_at: float
    detection_s: float
    alert_s: float


def _match(appearances: list[float], stopwatch: MQTTStopwatch) -> list[_Timed]:
    """The latencies of each alerted clip, from the last appearance before its detection
    event, in the order of the detection events."""
    timed = []
    for (kind, clip_id), detected in stopwatch.arrivals.items():
        alerted = stopwatch.arrivals.get(("alerts", clip_id))
        before = [moment for moment in appearances if moment <= detected]
        if kind == "detections" and alerted is not None and before:
            timed.append(_Timed(detected, detected - before[-1], alerted - before[-1]))
    return sorted(timed, key=lambda clip: clip.detected_at)


async def _run_rtsp(count: int, vlm_delay_s: float) -> None:
    topic = f"homesec-bench/{uuid.uuid4().hex[:8]}"
    with serve_openai() as vlm, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        vlm.default_reply = ScriptedReply.analysis(delay_s=vlm_delay_s, risk_level="high")
        footage = make_appearing_person_footage(
            MEDIA, work / "appearing.mp4", empty_s=EMPTY_S, person_s=PEOPLE_S
        )
        camera = RTSPCamera(footage)
        camera.start()
        os.environ[_CAMERA_URL_ENV] = camera.url
        source = {
            "backend": "rtsp",
            "config": {
                "rtsp_url_env": _CAMERA_URL_ENV,
                "recordings_dir": str(work / "clips"),
                "pre_roll_s": 2.0,
                "stop_delay_s": STOP_DELAY_S,
                "hwaccel": "off",
            },
        }
        config = _config(work, topic, vlm.base_url, source)
        try:
            async with (
                postgres_database("HOMESEC_BENCH_DSN"),
                MQTTStopwatch(f"{topic}/#") as stopwatch,
            ):
                with AppearanceWatcher(camera.url, SceneTeller(MEDIA)) as watcher:
                    async with running_app(config):
                        # The first clip warms the detector's worker up: one more than counted.
                        await stopwatch.wait_until(
                            lambda: len(_match(watcher.appearances, stopwatch)) > count,
                            within_s=(count + 2) * (EMPTY_S + PEOPLE_S) + 60,
                        )
        finally:
            camera.close()

    timed = _match(watcher.appearances, stopwatch)
    detections = [t.detection_s for t in timed[1:]]
    alerts = [t.alert_s for t in timed[1:]]
    print(
        f"alert latency from people appearing on a live RTSP stream ({len(detections)} "
        f"appearances, 640x360 10 fps, stop_delay_s {STOP_DELAY_S:g}, YOLOX-nano, Postgres)"
    )
    _report(
        detections,
        alerts,
        detection_target=f"target < {TARGET_LIVE_DETECTION_S:g} s",
        alert_note=f"the clip ends {STOP_DELAY_S:g} s after {PEOPLE_S:g} s of people; "
        f"VLM delay {vlm_delay_s:g} s",
    )


def _report(
    detections: list[float], alerts: list[float], *, detection_target: str, alert_note: str
) -> None:
    print(
        f"  detection event  p50 {percentile(detections, 50):6.2f} s  "
        f"p95 {percentile(detections, 95):6.2f} s   ({detection_target})"
    )
    print(
        f"  final alert      p50 {percentile(alerts, 50):6.2f} s  "
        f"p95 {percentile(alerts, 95):6.2f} s   ({alert_note})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", choices=["clip", "rtsp"], default="clip")
    parser.add_argument("--clips", type=int, default=8, help="finalized clips (clip)")
    parser.add_argument("--appearances", type=int, default=8, help="people appearing (rtsp)")
    parser.add_argument("--vlm-delay", type=float, default=5.0)
    args = parser.parse_args()
    if args.source == "rtsp":
        asyncio.run(_run_rtsp(args.appearances, args.vlm_delay))
    else:
        asyncio.run(_run_clips(args.clips, args.vlm_delay))


if __name__ == "__main__":
    main()
