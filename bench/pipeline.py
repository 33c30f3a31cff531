"""Pipeline overhead: clip handed to the pipeline -> MQTT alert received by a subscriber.

Zero-cost detector and VLM (the fakes of tests/fakes), real local storage, real Postgres state
(a throwaway database on 127.0.0.1:5432) and the real MQTT notifier through the local
Mosquitto. Prints p50/p95 latency over sequential clips, then clips per second for a burst.

    uv run python -m bench.pipeline [--clips 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import asyncpg
import tests.fakes.plugins  # noqa: F401  (registers the zero-cost fakes)

from homesec.app import build_components
from homesec.models.clip import Clip
from homesec.models.config import Config

PG = "postgresql://postgres@127.0.0.1:5432"
MEDIA = Path(os.environ.get("HOMESEC_SHARED_DIR", Path(__file__).parents[2] / "shared")) / "media"


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
                        "topic_template": topic_prefix + "/{camera_name}",
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


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def _run(count: int) -> None:
    database = f"homesec_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{database}"')
    os.environ["HOMESEC_BENCH_DSN"] = f"{PG}/{database}"
    topic = f"homesec-bench/{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            components = build_components(_config(work, topic))
            await components.start()
            async with aiomqtt.Client("127.0.0.1") as subscriber:
                await subscriber.subscribe(f"{topic}/#", qos=1)
                received: dict[str, float] = {}
                arrived = asyncio.Event()

                async def listen() -> None:
                    async for message in subscriber.messages:
                        payload = json.loads(message.payload)  # type: ignore[arg-type]
                        received[payload["clip_id"]] = time.perf_counter()
                        arrived.set()

                listener = asyncio.create_task(listen())
                warmup = _clips(work, 5, 1_600_000_000)
                await _sequential(components.pipeline, warmup, received, arrived)

                latencies = await _sequential(
                    components.pipeline, _clips(work, count, 1_700_000_000), received, arrived
                )
                burst = _clips(work, count, 1_800_000_000)
                start = time.perf_counter()
                for clip in burst:
                    components.pipeline.submit(clip)
                while not all(clip.clip_id in received for clip in burst):
                    arrived.clear()
                    await asyncio.wait_for(arrived.wait(), 30)
                elapsed = time.perf_counter() - start
                listener.cancel()
            await components.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

    ms = [latency * 1000 for latency in latencies]
    print(f"pipeline overhead, clip handed on -> MQTT alert received ({count} clips, Postgres)")
    print(f"  p50 {_percentile(ms, 50):7.1f} ms")
    print(f"  p95 {_percentile(ms, 95):7.1f} ms")
    print(f"  max {max(ms):7.1f} ms")
    print(f"burst of {count} clips: {count / elapsed:6.1f} clips/s ({elapsed:.2f} s)")


async def _sequential(
    pipeline: object, clips: list[Clip], received: dict[str, float], arrived: asyncio.Event
) -> list[float]:
    latencies = []
    for clip in clips:
        arrived.clear()
        start = time.perf_counter()
        pipeline.submit(clip)  # type: ignore[attr-defined]
        while clip.clip_id not in received:
            await asyncio.wait_for(arrived.wait(), 30)
            arrived.clear()
        latencies.append(received[clip.clip_id] - start)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=200)
    asyncio.run(_run(parser.parse_args().clips))


if __name__ == "__main__":
    main()
