"""Shared plumbing of the benchmarks: a throwaway Postgres database, an MQTT stopwatch."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import asyncpg

PG = "postgresql://postgres@127.0.0.1:5432"
SHARED = Path(os.environ.get("HOMESEC_SHARED_DIR", Path(__file__).parents[2] / "shared"))
MEDIA = SHARED / "media"
MODELS = SHARED / "models"


@asynccontextmanager
async def postgres_database(env_var: str) -> AsyncIterator[str]:
    """A fresh database on the local Postgres, its DSN in `env_var`; dropped afterwards."""
    name = f"homesec_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    os.environ[env_var] = f"{PG}/{name}"
    try:
        yield os.environ[env_var]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class MQTTStopwatch:
    """Records when each (topic kind, clip_id) message arrives on the local broker."""

    def __init__(self, topic_filter: str) -> None:
        self._topic_filter = topic_filter
        self.arrivals: dict[tuple[str, str], float] = {}
        self._arrived = asyncio.Event()
        self._client = aiomqtt.Client("127.0.0.1")
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MQTTStopwatch:
        await self._client.__aenter__()
        await self._client.subscribe(self._topic_filter, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._client.__aexit__(None, None, None)

    async def wait_for(self, kind: str, clip_id: str, within_s: float = 60.0) -> float:
        """perf_counter time of the arrival of that message."""
        await self.wait_until(lambda: (kind, clip_id) in self.arrivals, within_s)
        return self.arrivals[(kind, clip_id)]

    async def wait_until(self, done: Callable[[], bool], within_s: float) -> None:
        """Wait, message by message, until `done()` holds."""
        async with asyncio.timeout(within_s):
            while not done():
                self._arrived.clear()
                await self._arrived.wait()

    async def _read(self) -> None:
        async for message in self._client.messages:
            kind = str(message.topic).split("/")[-2]
            clip_id = json.loads(message.payload)["clip_id"]  # type: ignore[arg-type]
            self.arrivals[(kind, clip_id)] = time.perf_counter()
            self._arrived.set()


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
