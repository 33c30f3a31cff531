"""Run the real HomeSecApp in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from homesec.app import HomeSecApp
from homesec.models.config import Config


@asynccontextmanager
async def running_app(config: Config, startup_timeout_s: float = 20.0) -> AsyncIterator[HomeSecApp]:
    """Start the app (server, recovery, sources) and stop it gracefully on exit."""
    app = HomeSecApp(config)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        async with asyncio.timeout(startup_timeout_s):
            while not all(source.is_healthy() for source in app.sources):
                if task.done():
                    await task
                await asyncio.sleep(0.02)
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
