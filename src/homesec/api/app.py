"""Builds the FastAPI application and serves it with uvicorn inside the app's event loop.

One process serves the probes, the versioned JSON API (`/api/v1`, schema at
`/api/v1/openapi.json`), media with range requests, `/metrics` and the web UI (`/ui/`);
every answer carries the security headers (`security_headers.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from homesec import __version__
from homesec.api.auth import Authenticator, require_key
from homesec.api.context import ApiContext
from homesec.api.media_files import MediaFiles
from homesec.api.routes import cameras, clips, docs, health, ingest, media, metrics, stats, ui
from homesec.api.routes import modes as modes_routes
from homesec.api.security_headers import SecurityHeaders
from homesec.api.sessions import UiSessions
from homesec.api.signing import MediaLinker, Signer
from homesec.errors import StartupError
from homesec.health import HealthMonitor
from homesec.interfaces import ClipSource, ModeControl, StorageBackend
from homesec.models.zones import Zones
from homesec.repository.clip_repository import ClipRepository
from homesec.reviews import ReviewCounts
from homesec.throttle import GuessThrottle


class _HomeSecApi(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so that even a 500 carries the headers.
        return SecurityHeaders(super().build_middleware_stack())


def create_api(
    monitor: HealthMonitor,
    api_key: str | None,
    *,
    repository: ClipRepository,
    storage: StorageBackend,
    sources: Sequence[ClipSource],
    media_cache_dir: Path,
    revoked_sessions_file: Path,
    signer: Signer | None = None,
    throttle: GuessThrottle | None = None,
    camera_zones: Mapping[str, Zones] | None = None,
    modes: ModeControl | None = None,
    reviews: ReviewCounts | None = None,
) -> FastAPI:
    """The whole HTTP surface; `api_key` None means auth is off.

    `media_cache_dir` receives clips fetched back from storage for playback (emptied on
    shutdown); `revoked_sessions_file` keeps the UI sessions ended by a logout;
    `signer` defaults to one keyed from the API key (`Signer.for_api_key`), `throttle` to
    the default limit on wrong keys per client address; `camera_zones` are drawn on clip pages;
    `modes` (None without modes) is shown and set; `reviews` hears of clips marked reviewed.
    """
    signer = signer or Signer.for_api_key(api_key)
    media_files = MediaFiles(storage, media_cache_dir)
    sessions = UiSessions(signer, revoked_sessions_file)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sessions.load()
        try:
            yield
        finally:
            media_files.close()

    api = _HomeSecApi(
        title="HomeSec",
        version=__version__,
        openapi_url=None,  # served by routes.docs, behind the key
        docs_url=None,
        redoc_url=None,
        # One schema per model: RiskLevel (models/enums.py) describes only its input form,
        # which is also exactly its output (its lowercase name). Models with computed fields
        # would still be described as output; ClipStateData is therefore not a response body.
        separate_input_output_schemas=False,
        lifespan=lifespan,
    )
    api.state.auth = Authenticator(api_key, signer, sessions, throttle)
    links = MediaLinker(signer)
    api.state.context = ApiContext(
        monitor, repository, media_files, sources, links, dict(camera_zones or {}), modes, reviews
    )
    api.include_router(health.public)
    api.include_router(health.protected, dependencies=[Depends(require_key)])
    for router in (
        clips.router,
        media.router,
        cameras.router,
        stats.router,
        metrics.router,
        ingest.router,
        modes_routes.router,
    ):
        api.include_router(router)
    api.include_router(docs.router)
    api.include_router(ui.router)
    api.include_router(ui.pages)
    api.mount("/ui/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    return api


class ApiServer:
    """uvicorn as a task of our loop; `port` is the bound port (useful with port 0)."""

    def __init__(self, api: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(api, host=host, port=port, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._where = f"{host}:{port}"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        task = self._task = asyncio.create_task(self._serve(), name="http-api")
        while not self._server.started:
            if task.done():
                self._task = None  # nothing left to close
                await task  # raises StartupError
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

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
