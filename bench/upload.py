"""Upload throughput: the `s3` storage plugin's `put` to an S3 server on loopback.

Starts moto's standalone S3 server (a separate process, real HTTP on 127.0.0.1), then uploads
the same 50 clips of the shared media (the two 20 s 1080p clips, alternating: about 163 MB)
with at most 1 and then 4 uploads at once (an asyncio.Semaphore around `put`, as the
pipeline's `upload_workers` does), each run into an empty bucket. Prints MB/s and clips/s per
concurrency. The store is in-memory on the same machine, so the figures are HomeSec's and
boto3's ceiling, not a network's.

    uv run python -m bench.upload [--clips 50] [--workers 1 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from tests.services.s3_server import (
    ACCESS_KEY_ID,
    KEY_ID_ENV,
    SECRET_ACCESS_KEY,
    SECRET_ENV,
    S3Server,
    s3_storage_config,
    serve_s3,
)

from homesec.interfaces import StorageBackend
from homesec.plugins.registry import load_storage

MEDIA = Path(os.environ.get("HOMESEC_SHARED_DIR", Path(__file__).parents[2] / "shared")) / "media"
CLIPS = [MEDIA / "front_door_1700000000.mp4", MEDIA / "backyard_1700000100.mp4"]


async def _upload_all(storage: StorageBackend, clips: list[Path], workers: int) -> float:
    """Seconds to put every clip with at most `workers` uploads at once."""
    gate = asyncio.Semaphore(workers)

    async def put(index: int, clip: Path) -> None:
        async with gate:
            await storage.put(clip, f"bench/bench_{1700000000 + index}.mp4")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for index, clip in enumerate(clips):
            group.create_task(put(index, clip))
    return time.perf_counter() - started


async def _run(server: S3Server, count: int, workers: list[int]) -> None:
    clips = [CLIPS[index % len(CLIPS)] for index in range(count)]
    megabytes = sum(clip.stat().st_size for clip in clips) / 1e6
    print(f"{count} clips, {megabytes:.1f} MB, moto S3 server at {server.endpoint_url}")
    for worker_count in workers:
        storage = load_storage("s3", s3_storage_config(server, server.create_bucket()))
        await storage.put(clips[0], "bench/warm-up.mp4")  # connections, credentials
        seconds = await _upload_all(storage, clips, worker_count)
        await storage.aclose()
        print(
            f"upload_workers={worker_count}: {megabytes / seconds:7.1f} MB/s   "
            f"{count / seconds:6.2f} clips/s   ({seconds:.2f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    os.environ[KEY_ID_ENV], os.environ[SECRET_ENV] = ACCESS_KEY_ID, SECRET_ACCESS_KEY
    with serve_s3() as server:
        asyncio.run(_run(server, args.clips, args.workers))


if __name__ == "__main__":
    main()
