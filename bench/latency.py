"""Alert latency: clip finalized -> detection event, and -> final alert, over real parts.

The real detector (YOLOX-nano on ONNX Runtime, the shared test model), real Postgres state,
the real MQTT notifier through the local Mosquitto, and a local OpenAI-compatible server that
answers after a fixed delay (the VLM's own latency). Clips are handed on one at a time.

    uv run python -m bench.latency [--clips 8] [--vlm-delay 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests.services.openai_server import ScriptedReply, serve_openai

from bench._support import MEDIA, MODELS, MQTTStopwatch, percentile, postgres_database
from homesec.app import build_components
from homesec.models.clip import Clip
from homesec.models.config import Config


def _config(work: Path, topic: str, vlm_url: str) -> Config:
    return Config.model_validate(
        {
            "cameras": [
                {
                    "name": "front_door",
                    "source": {"backend": "local_folder", "config": {"watch_dir": str(work)}},
                }
            ],
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


async def _run(count: int, vlm_delay_s: float) -> None:
    topic = f"homesec-bench/{uuid.uuid4().hex[:8]}"
    detections: list[float] = []
    alerts: list[float] = []
    with serve_openai() as vlm, tempfile.TemporaryDirectory() as tmp:
        vlm.default_reply = ScriptedReply.analysis(delay_s=vlm_delay_s, risk_level="high")
        async with postgres_database("HOMESEC_BENCH_DSN"):
            components = build_components(_config(Path(tmp), topic, vlm.base_url))
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
            await components.close()

    print(f"alert latency from clip finalized ({count} clips, 20 s 1080p, YOLOX-nano, Postgres)")
    print(
        f"  detection event  p50 {percentile(detections, 50):6.2f} s  "
        f"p95 {percentile(detections, 95):6.2f} s   (target < 1 s)"
    )
    print(
        f"  final alert      p50 {percentile(alerts, 50):6.2f} s  "
        f"p95 {percentile(alerts, 95):6.2f} s   (target < VLM delay {vlm_delay_s:g} s + 1 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--vlm-delay", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(_run(args.clips, args.vlm_delay))


if __name__ == "__main__":
    main()
