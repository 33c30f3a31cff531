"""Pipeline overhead: clip handed to the pipeline -> MQTT alert received by a subscriber.

Zero-cost detector and VLM (the fakes of tests/fakes), real local storage, real Postgres state
(a throwaway database on 127.0.0.1:5432) and the real MQTT notifier through the local
Mosquitto. Prints p50/p95 latency over sequential clips, then clips per second for a burst.

    uv run python -m bench.pipeline [--clips 200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import tests.fakes.plugins  # noqa: F401  (registers the zero-cost fakes)

from bench._support import MEDIA, MQTTStopwatch, percentile, postgres_database
from homesec.app import build_components
from homesec.models.clip import Clip
from homesec.models.config import Config
from homesec.pipeline.core import ClipPipeline


def _config(work: Path, topic_prefix: str) -> Config:
    return Config.model_validate(
        {
            "cameras": [
                {
                    "name": "bench",
                    "source": {"backend": "local_folder", "config": {"watch_dir": str(work)}},
                }
            ],
            "storage": {"backend": "local", "config": {"root": str(work / "storage")}},
            "state_store": {"dsn_env": "HOMESEC_BENCH_DSN"},
            "filter": {"backend": "fake_filter", "config": {}},
            "vlm": {"backend": "fake_vlm", "run_mode": "always"},
            "alert_policy": {"backend": "default", "config": {"min_risk_level": "low"}},
            "notifiers": [
                {
                    "backend": "mqtt",
                    "config": {
                        "host": "127.0.0.1",
                        "topic_template": topic_prefix + "/alerts/{camera_name}",
                    },
                }
            ],
            "concurrency": {"max_clips_in_flight": 32, "upload_workers": 8},
            "server": {"enabled": False},
        }
    )


def _clips(directory: Path, count: int, first_ts: int) -> list[Clip]:
    # A short real MP4 prefix: the zero-cost detector only checks the container header.
    head = (MEDIA / "front_door_1700000000.mp4").read_bytes()[:256_000]
    clips = []
    for i in range(count):
        path = directory / f"bench_{first_ts + i}.mp4"
        path.write_bytes(head)
        start = datetime.fromtimestamp(first_ts + i, UTC)
        clips.append(
            Clip(
                clip_id=path.name,
                camera_name="bench",
                local_path=path,
                start_ts=start,
                end_ts=start,
                duration_s=1.0,
                source_backend="bench",
            )
        )
    return clips


async def _run(count: int) -> None:
    topic = f"homesec-bench/{uuid.uuid4().hex[:8]}"
    async with postgres_database("HOMESEC_BENCH_DSN"):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            components = build_components(_config(work, topic))
            await components.start()
            async with MQTTStopwatch(f"{topic}/#") as stopwatch:
                await _sequential(components.pipeline, _clips(work, 5, 1_600_000_000), stopwatch)
                latencies = await _sequential(
                    components.pipeline, _clips(work, count, 1_700_000_000), stopwatch
                )
                burst = _clips(work, count, 1_800_000_000)
                start = time.perf_counter()
                for clip in burst:
                    components.pipeline.submit(clip)
                for clip in burst:
                    await stopwatch.wait_for("alerts", clip.clip_id)
                elapsed = time.perf_counter() - start
            await components.aclose()

    ms = [latency * 1000 for latency in latencies]
    print(f"pipeline overhead, clip handed on -> MQTT alert received ({count} clips, Postgres)")
    print(f"  p50 {percentile(ms, 50):7.1f} ms")
    print(f"  p95 {percentile(ms, 95):7.1f} ms")
    print(f"  max {max(ms):7.1f} ms")
    print(f"burst of {count} clips: {count / elapsed:6.1f} clips/s ({elapsed:.2f} s)")


async def _sequential(
    pipeline: ClipPipeline, clips: list[Clip], stopwatch: MQTTStopwatch
) -> list[float]:
    latencies = []
    for clip in clips:
        start = time.perf_counter()
        pipeline.submit(clip)
        latencies.append(await stopwatch.wait_for("alerts", clip.clip_id) - start)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=200)
    asyncio.run(_run(parser.parse_args().clips))


if __name__ == "__main__":
    main()
