"""The API in-process (httpx over ASGI) on the real app's components and a real database.

`api` runs on the embedded SQLite file and on Postgres (parametrized); `sqlite_api` on SQLite
only, for behaviour that does not depend on the database (auth, metrics). Components come
from `HomeSecApp`, as in production: local storage, the fake detector and VLM of tests/fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from homesec.api.app import create_api
from homesec.api.signing import Signer
from homesec.app import HomeSecApp
from homesec.health import HealthMonitor
from homesec.interfaces import StorageBackend
from homesec.models.config import Config
from homesec.repository.clip_repository import ClipRepository
from homesec.throttle import GuessThrottle
from tests.fakes.builders import make_config

DSN_ENV = "HOMESEC_TEST_API_DSN"
API_KEY = "s3cret-key"
KEY_ENV = "HOMESEC_TEST_API_KEY"


@dataclass
class ApiHarness:
    client: httpx.AsyncClient
    repository: ClipRepository
    storage: StorageBackend
    config: Config
    spool: Path
    app: FastAPI


ServeApi = Callable[..., AbstractAsyncContextManager[ApiHarness]]


@asynccontextmanager
async def _serve(
    config: Config,
    spool: Path,
    api_key: str | None,
    signer: Signer | None,
    throttle: GuessThrottle | None = None,
) -> AsyncIterator[ApiHarness]:
    app = HomeSecApp(config)
    components = app.components
    await components.repository.start()
    monitor = HealthMonitor(
        components.pipeline,
        components.repository,
        components.storage,
        app.sources,
        components.notifiers,
    )
    api = create_api(
        monitor,
        api_key,
        repository=components.repository,
        storage=components.storage,
        sources=app.sources,
        media_cache_dir=config.pipeline.work_dir / "api-media",
        revoked_sessions_file=revoked_sessions_file(config),
        signer=signer,
        throttle=throttle,
    )
    transport = httpx.ASGITransport(app=api)
    try:
        async with (
            api.router.lifespan_context(api),
            httpx.AsyncClient(transport=transport, base_url="http://homesec") as client,
        ):
            yield ApiHarness(client, components.repository, components.storage, config, spool, api)
    finally:
        await components.aclose()


def revoked_sessions_file(config: Config) -> Path:
    """Where the service keeps the UI sessions ended by a logout (as `homesec.app` does)."""
    return config.pipeline.work_dir / "revoked-sessions.json"


def _config(tmp_path: Path, **sections: Any) -> Config:
    return make_config(
        tmp_path,
        state_store={"dsn_env": DSN_ENV, "sqlite_path": str(tmp_path / "state.db")},
        **sections,
    )


# On Postgres, each test creates a database: `make test-fast` runs the SQLite side alone.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def api_config(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Config:
    if request.param == "postgres":
        monkeypatch.setenv(DSN_ENV, request.getfixturevalue("postgres_dsn"))
    else:
        monkeypatch.delenv(DSN_ENV, raising=False)
    return _config(tmp_path)


@pytest.fixture
def sqlite_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv(DSN_ENV, raising=False)
    return _config(tmp_path)


@pytest.fixture
async def api(api_config: Config, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """Auth off, on SQLite and on Postgres."""
    async with _serve(api_config, tmp_path / "spool", None, None) as harness:
        yield harness


@pytest.fixture
def serve_sqlite_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServeApi:
    """Serve on SQLite with a chosen key (None: auth off), signer and wrong-key throttle.

    The config is loaded when serving, as the service reads its env vars when it loads its
    config: a test may set one first (a DSN).
    """
    monkeypatch.delenv(DSN_ENV, raising=False)

    def serve(
        api_key: str | None = API_KEY,
        signer: Signer | None = None,
        throttle: GuessThrottle | None = None,
        **sections: Any,
    ) -> AbstractAsyncContextManager[ApiHarness]:
        config = _config(tmp_path, **sections)
        return _serve(config, tmp_path / "spool", api_key, signer, throttle)

    return serve
