"""Getting clips in from outside: the HTTP ingest and the Frigate source, timed end to end.

The real service (`HomeSecApp` in this process, SQLite state, local storage, the zero-cost
detector and VLM of tests/fakes) with an `http_ingest` camera and a `frigate` camera whose
Frigate is the fake of tests/services, on the local Mosquitto.
- ingest: the 4.6 MB, 20 s 1080p clip POSTed `--clips` times, by 1 and by 4 clients at once;
  time from the request's first byte to the 201 (on disk, synced, probed, named, handed on).
- frigate: `--clips` review items ending one after the other; time from Frigate's MQTT `end`
  message to the clip handed to the pipeline (fetched, synced, named).

    uv run python -m bench.ingest [--clips 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from tests.fakes.builders import make_config
from tests.fakes.running import running_app
from tests.services.frigate_fake import FakeFrigate, FakeReview
from tests.services.mosquitto import BrokerAddress

from bench._support import MEDIA
from homesec.models.clip import Clip

CLIP = MEDIA / "front_door_1700000000.mp4"
KEY_ENV = "HOMESEC_BENCH_INGEST_KEY"
KEY = "bench-ingest-key"


def _config(work: Path, frigate: FakeFrigate) -> Any:
    cameras = [
        {
            "name": "doorbell",
            "source": {"backend": "http_ingest", "config": {"spool_dir": str(work / "ingest")}},
        },
        {
            "name": "front_cam",
            "source": {
                "backend": "frigate",
                "config": {
                    "api_url": frigate.url,
                    "topic_prefix": frigate.topic_prefix,
                    "mqtt": {"host": frigate.broker.host, "port": frigate.broker.port},
                    "spool_dir": str(work / "frigate"),
                    "catch_up_s": 0,
                    "retry_min_s": 0.05,
                },
            },
        },
    ]
    server = {"enabled": True, "port": 0, "auth_enabled": True, "api_key_env": KEY_ENV}
    return make_config(work, cameras=cameras, server=server)


def _summary(name: str, seconds: list[float], megabytes: float) -> None:
    ordered = sorted(seconds)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    rate = megabytes * len(seconds) / sum(seconds)
    print(
        f"{name:<28} n={len(seconds):<3} p50 {statistics.median(seconds) * 1000:7.1f} ms"
        f"   p95 {p95 * 1000:7.1f} ms   {rate:6.1f} MB/s per client"
    )


async def _post(client: httpx.AsyncClient, data: bytes) -> float:
    started = time.perf_counter()
    response = await client.post("/api/v1/ingest/doorbell", content=data)
    response.raise_for_status()
    return time.perf_counter() - started


async def _ingest(port: int, clips: int) -> None:
    data = CLIP.read_bytes()
    megabytes = len(data) / 1e6
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
    ) as client:
        await _post(client, data)  # warm-up
        single = [await _post(client, data) for _ in range(clips)]
        _summary("ingest, 1 client", single, megabytes)
        parallel: list[float] = []
        for _ in range(max(1, clips // 4)):
            parallel += await asyncio.gather(*(_post(client, data) for _ in range(4)))
        _summary("ingest, 4 clients at once", parallel, megabytes)


class Arrivals:
    """When each clip was handed to the pipeline (a source callback, on the loop)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._changed = asyncio.Event()

    def __call__(self, clip: Clip) -> None:
        self.at.setdefault(clip.clip_id, time.perf_counter())
        self._changed.set()

    async def wait_for(self, clip_id: str) -> float:
        while clip_id not in self.at:
            self._changed.clear()
            await self._changed.wait()
        return self.at[clip_id]


async def _frigate(frigate: FakeFrigate, arrived: Arrivals, clips: int) -> None:
    data = CLIP.read_bytes()
    latencies = []
    for n in range(clips):
        start = 1_700_000_000.0 + 100 * n
        review = frigate.add_review(
            FakeReview(
                id=f"{start}-bench{n}",
                camera="front_cam",
                start_time=start,
                end_time=start + 20,
                clip=data,
            )
        )
        clip_id = f"front_cam_{int(start)}.mp4"
        sent = time.perf_counter()
        await frigate.publish_review("end", review)
        latencies.append(await arrived.wait_for(clip_id) - sent)
    _summary("frigate end -> handed on", latencies, len(data) / 1e6)


async def main(clips: int) -> None:
    os.environ[KEY_ENV] = KEY
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frigate = FakeFrigate(BrokerAddress("127.0.0.1", 1883), f"bench/{uuid.uuid4().hex}")
        frigate.start()
        try:
            async with running_app(_config(work, frigate)) as app:
                arrived = Arrivals()
                for source in app.sources:
                    source.register_callback(arrived)
                assert app.server is not None
                print(f"clip: {CLIP.name}, {CLIP.stat().st_size / 1e6:.1f} MB")
                await _ingest(app.server.port, clips)
                await _frigate(frigate, arrived, clips)
        finally:
            frigate.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    asyncio.run(main(parser.parse_args().clips))
