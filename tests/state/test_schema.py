"""The migrations create SPEC §3's tables: exact DDL on Postgres, equivalents on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from homesec.models.config import StateStoreConfig
from homesec.state.store import StateStore, database_url

DSN_ENV = "HOMESEC_TEST_SCHEMA_DSN"


@pytest.fixture
async def migrated_postgres(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a fresh Postgres database after HomeSec migrated it."""
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    store = StateStore.from_config(StateStoreConfig(dsn_env=DSN_ENV))
    await store.ensure_schema()
    await store.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_name = $1",
        table,
    )
    return {row[0]: tuple(row[1:]) for row in rows}


async def test_postgres_clip_states_has_the_exact_columns(
    migrated_postgres: asyncpg.Connection,
) -> None:
    # Given a migrated Postgres database
    # When the clip_states columns and primary key are inspected
    columns = await _columns(migrated_postgres, "clip_states")
    primary_key = await migrated_postgres.fetchval(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = 'clip_states'::regclass AND i.indisprimary"
    )

    # Then they are clip_id TEXT PK, data JSONB NOT NULL and two TIMESTAMPTZ DEFAULT now()
    assert columns == {
        "clip_id": ("text", "NO", None),
        "data": ("jsonb", "NO", None),
        "created_at": ("timestamp with time zone", "YES", "now()"),
        "updated_at": ("timestamp with time zone", "YES", "now()"),
    }
    assert primary_key == "clip_id"


async def test_postgres_clip_events_is_an_append_only_log(
    migrated_postgres: asyncpg.Connection,
) -> None:
    # Given a migrated Postgres database
    # When the clip_events columns are inspected
    columns = await _columns(migrated_postgres, "clip_events")

    # Then it has a BIGSERIAL id and the event columns, all NOT NULL
    id_type, id_nullable, id_default = columns.pop("id")
    assert (id_type, id_nullable) == ("bigint", "NO")
    assert id_default.startswith("nextval(")
    assert columns == {
        "clip_id": ("text", "NO", None),
        "event_type": ("text", "NO", None),
        "ts": ("timestamp with time zone", "NO", None),
        "data": ("jsonb", "NO", None),
    }


async def test_postgres_has_the_expression_indexes(
    migrated_postgres: asyncpg.Connection,
) -> None:
    # Given a migrated Postgres database
    # When its indexes are listed
    rows = await migrated_postgres.fetch(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE tablename IN ('clip_states', 'clip_events') AND indexname LIKE 'idx_%'"
    )
    indexes = {row["indexname"]: row["indexdef"] for row in rows}

    # Then status and camera_name are indexed as expressions, events by clip_id (plus the
    # listing indexes of the API's migration)
    assert set(indexes) >= {
        "idx_clip_states_status",
        "idx_clip_states_camera",
        "idx_clip_events_clip_id",
    }
    assert indexes["idx_clip_states_status"].endswith("((data ->> 'status'::text)))")
    assert indexes["idx_clip_states_camera"].endswith("((data ->> 'camera_name'::text)))")
    assert indexes["idx_clip_events_clip_id"].endswith("(clip_id)")


async def test_sqlite_gets_wal_and_json_indexes_from_any_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no DSN, a relative SQLite path, and a working directory far from the package
    monkeypatch.delenv(DSN_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    config = StateStoreConfig(dsn_env=DSN_ENV, sqlite_path=Path("nested/dir/homesec.db"))

    # When the store migrates
    store = StateStore.from_config(config)
    await store.ensure_schema()
    await store.aclose()

    # Then the file was created under the cwd, in WAL mode, with the json_extract indexes
    db_file = tmp_path / "nested" / "dir" / "homesec.db"
    with sqlite3.connect(db_file) as conn:
        journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    assert store.backend_name == "sqlite"
    assert journal_mode == "wal"
    assert indexes["idx_clip_states_status"].endswith("(json_extract(data, '$.status'))")
    assert indexes["idx_clip_states_camera"].endswith("(json_extract(data, '$.camera_name'))")
    assert indexes["idx_clip_events_clip_id"].endswith("(clip_id)")


def test_sqlite_is_the_default_without_a_dsn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a config whose DSN variable is empty
    monkeypatch.setenv(DSN_ENV, "")
    config = StateStoreConfig(dsn_env=DSN_ENV, sqlite_path=tmp_path / "homesec.db")

    # When the database URL is resolved
    url = database_url(config)

    # Then it is the embedded SQLite file through aiosqlite
    assert (url.drivername, url.database) == ("sqlite+aiosqlite", str(tmp_path / "homesec.db"))
