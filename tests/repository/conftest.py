"""Repository fixtures: one started ClipRepository per backend (SQLite file, real Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from homesec.models.config import StateStoreConfig
from homesec.repository.clip_repository import ClipRepository
from tests.repository.builders import DSN_ENV, state_store_config


# On Postgres, each test creates a database: `make test-fast` runs the SQLite side alone.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def state_config(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StateStoreConfig:
    """The same repository contract, on the embedded SQLite file and on Postgres."""
    if request.param == "postgres":
        monkeypatch.setenv(DSN_ENV, request.getfixturevalue("postgres_dsn"))
    else:
        monkeypatch.delenv(DSN_ENV, raising=False)
    return state_store_config(tmp_path)


@pytest.fixture
async def repository(state_config: StateStoreConfig) -> AsyncIterator[ClipRepository]:
    repo = ClipRepository.from_config(state_config)
    await repo.start()
    try:
        yield repo
    finally:
        await repo.aclose()
