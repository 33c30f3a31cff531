"""The state store: engines, migrations, and a connection for the SQL of `queries.py`.

One class serves Postgres (asyncpg) and the embedded SQLite file (aiosqlite) through the
schema in `tables.py`. It raises on every database problem; `ClipRepository` owns the
policy (timeouts, dropped writes, models).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from homesec.errors import ConfigError
from homesec.models.config import StateStoreConfig
from homesec.state.tables import POSTGRES, SQLITE

T = TypeVar("T")
Query = Callable[[AsyncConnection, str], Awaitable[T]]
"""SQL run by `StateStore.run_read`/`run_write`: gets a connection and the dialect name."""

_MIGRATIONS = "homesec.state:migrations"  # a package resource: works installed, from any cwd
_POSTGRES_CONNECT_TIMEOUT_S = 3.0
_SQLITE_BUSY_TIMEOUT_S = 5.0
_MIGRATION_LOCK_KEY = 0x486F6D65536563  # pg advisory lock id: one migrator per database


def database_url(config: StateStoreConfig) -> URL:
    """Postgres (asyncpg) when the DSN env var is set, else the embedded SQLite file."""
    value = config.dsn_env.value
    dsn = value.get_secret_value().strip() if value is not None else ""
    if not dsn:
        return URL.create(f"{SQLITE}+aiosqlite", database=str(config.sqlite_path))
    return _asyncpg_url(dsn, config.dsn_env.name)


def _asyncpg_url(dsn: str, env_name: str) -> URL:
    # Errors name the env var, never the DSN: it may hold a password.
    try:
        url = make_url(dsn)
    except ArgumentError:
        raise ConfigError([f"{env_name}: not a database URL"]) from None
    if url.get_backend_name() not in {"postgres", POSTGRES}:
        scheme = url.get_backend_name()
        raise ConfigError([f"{env_name}: expected a postgresql:// URL, got {scheme}://"])
    query = dict(url.query)
    if "sslmode" in query:  # libpq spelling; asyncpg calls it `ssl`
        query["ssl"] = query.pop("sslmode")
    return url.set(drivername=f"{POSTGRES}+asyncpg", query=query)


class StateStore:
    """Runs SQL functions on pooled connections; applies the Alembic migrations first."""

    def __init__(self, url: URL) -> None:
        self._url = url
        self._dialect = url.get_backend_name()
        self._engine = _create_engine(url)
        # Reads get a Postgres pool of their own in autocommit: a read and its pre-ping then
        # cost no BEGIN/ROLLBACK round trips (per page of the clip list, that halved the time
        # spent on the database). SQLite's transactions are our own (_tune_sqlite): one
        # engine there.
        self._read_engine = (
            _create_engine(url, autocommit=True) if self._dialect == POSTGRES else self._engine
        )
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()

    @classmethod
    def from_config(cls, config: StateStoreConfig) -> StateStore:
        return cls(database_url(config))

    @property
    def backend_name(self) -> str:
        return "postgres" if self._dialect == POSTGRES else SQLITE

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`: the SQL dialect queries must be written for."""
        return self._dialect

    @property
    def location(self) -> str:
        """Where the data lives, safe to log: host and port, or the SQLite file."""
        if self._dialect == POSTGRES:
            return f"{self._url.host or 'localhost'}:{self._url.port or 5432}"
        return str(self._url.database)

    async def ensure_schema(self) -> None:
        """Apply the migrations once per process, before the first query that needs them."""
        if self._schema_ready:
            return
        async with self._schema_lock:
            if not self._schema_ready:
                await self._migrate()
                self._schema_ready = True

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def aclose(self) -> None:
        await self._engine.dispose()
        if self._read_engine is not self._engine:
            await self._read_engine.dispose()

    async def run_read(self, query: Query[T]) -> T:
        """Run a read query (`queries.py`) on a pooled connection, after the migrations."""
        await self.ensure_schema()
        async with self._read_engine.connect() as conn:
            return await query(conn, self._dialect)

    async def run_write(self, statement: Query[T]) -> T:
        """Run writes (`queries.py`, `log_records.py`) in one transaction, after the migrations."""
        await self.ensure_schema()
        async with self._engine.begin() as conn:
            return await statement(conn, self._dialect)

    async def _migrate(self) -> None:
        if self._dialect == SQLITE:
            Path(str(self._url.database)).parent.mkdir(parents=True, exist_ok=True)
        async with self._engine.begin() as conn:
            if self._dialect == POSTGRES:
                # Two HomeSec processes starting on one Postgres must not race on CREATE TABLE.
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                await conn.execute(lock, {"key": _MIGRATION_LOCK_KEY})
            await conn.run_sync(_upgrade_to_head)


def _create_engine(url: URL, autocommit: bool = False) -> AsyncEngine:
    if url.get_backend_name() == SQLITE:
        engine = create_async_engine(
            url, hide_parameters=True, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S}
        )
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    # pool_pre_ping swaps out connections that died with the server, so writes resume by
    # themselves after an outage; the short connect timeout keeps a dead host from stalling.
    # AUTOCOMMIT as the pool's own level, so that the pre-ping runs without a transaction too.
    isolation = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_pre_ping=True,
        connect_args={"timeout": _POSTGRES_CONNECT_TIMEOUT_S},
        **isolation,
    )


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the API) run while the pipeline writes; the busy timeout makes
    # concurrent writers wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # The driver would only BEGIN before DML and run DDL outside any transaction; we BEGIN
    # ourselves (_begin_sqlite), so a migration applies completely or not at all.
    dbapi_connection.isolation_level = None


def _begin_sqlite(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _upgrade_to_head(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", _MIGRATIONS)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
