"""Builds the FastAPI application and serves it with uvicorn inside the app's event loop."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from fastapi import Depends, FastAPI

from homesec import __version__
from homesec.api.auth import api_key_guard
from homesec.api.routes import health
from homesec.errors import StartupError
from homesec.health import HealthMonitor


def create_api(monitor: HealthMonitor, api_key: str | None) -> FastAPI:
    api = FastAPI(title="HomeSec", version=__version__)
    api.state.health = monitor
    api.include_router(health.public)
    api.include_router(health.protected, dependencies=[Depends(api_key_guard(api_key))])
    return api


class ApiServer:
    """uvicorn as a task of our loop; `port` is the bound port (useful with port 0)."""

    def __init__(self, api: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(api, host=host, port=port, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._where = f"{host}:{port}"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="http-api")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises StartupError
                raise StartupError(f"HTTP API stopped while starting on {self._where}")
            await asyncio.sleep(0.02)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:
            # uvicorn logs why (port taken...) and calls sys.exit instead of raising.
            raise StartupError(f"HTTP API cannot listen on {self._where}") from exc

    @property
    def port(self) -> int:
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
