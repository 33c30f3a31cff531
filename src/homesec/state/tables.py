"""The state schema as SQLAlchemy Core tables: one definition for Postgres and SQLite.

Postgres gets the exact DDL of SPEC §3 (JSONB, TIMESTAMPTZ, BIGSERIAL); SQLite gets the
closest equivalents (JSON text, an INTEGER rowid key). The expression indexes are created by
the Alembic migrations; `json_text` builds the matching expression for queries, so both
engines can use them. `settings` holds HomeSec's own state that is not a clip's (the mode),
one JSON document per key. `log_records` is the optional Postgres log sink
(`telemetry_db.py`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import JSON

POSTGRES = "postgresql"
SQLITE = "sqlite"

metadata = MetaData()

# JSONB on Postgres (indexable, compact); JSON text on SQLite.
JsonDocument = JSON().with_variant(JSONB(), POSTGRES)

# BIGSERIAL on Postgres; on SQLite only INTEGER PRIMARY KEY autoincrements (the rowid).
EventId = BigInteger().with_variant(Integer(), SQLITE)

clip_states = Table(
    "clip_states",
    metadata,
    Column("clip_id", Text, primary_key=True),
    Column("data", JsonDocument, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
    Index("idx_clip_states_created", "created_at", "clip_id"),
)

# What full-text search reads (`search.py`), one row per clip. Indexed by the generated
# `search_vector` (GIN) on Postgres, by the FTS5 table `clip_search_index` on SQLite; both
# made by migration 0005 (clip_states keeps SPEC's exact columns).
clip_search = Table(
    "clip_search",
    metadata,
    Column("clip_id", Text, primary_key=True),
    Column("search_text", Text, nullable=False),
)

clip_events = Table(
    "clip_events",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("clip_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("data", JsonDocument, nullable=False),
    Index("idx_clip_events_clip_id", "clip_id"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", Text, primary_key=True),
    Column("data", JsonDocument, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

log_records = Table(
    "log_records",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("level", Text, nullable=False),
    Column("logger", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("event_type", Text),
    Column("camera_name", Text),
    Column("clip_id", Text),
    Column("extras", JsonDocument, nullable=False),
    Index("idx_log_records_ts", "ts"),
    Index("idx_log_records_clip_id", "clip_id"),
)


def json_text(column: ColumnElement[Any], key: str, dialect: str) -> ColumnElement[str]:
    """`column->>'key'` on Postgres, `json_extract(column, '$.key')` on SQLite.

    The key is written as a literal, not a bound parameter, so the expression is the one the
    expression indexes were built on (SQLite matches index expressions literally).
    `key` must be one of our own constant field names.
    """
    if dialect == POSTGRES:
        return column.op("->>", return_type=Text)(literal_column(f"'{key}'"))
    return func.json_extract(column, literal_column(f"'$.{key}'"), type_=Text)


def json_path_text(
    column: ColumnElement[Any], path: tuple[str, ...], dialect: str
) -> ColumnElement[Any]:
    """`column #>> '{a,b}'` on Postgres (text), `json_extract(column, '$.a.b')` on SQLite.

    SQLite answers with the JSON value's own type (numbers, 1/0 for booleans); Postgres with
    text. Like `json_text`, the path is written literally and must be our own constant.
    """
    if dialect == POSTGRES:
        return column.op("#>>", return_type=Text)(literal_column("'{" + ",".join(path) + "}'"))
    return func.json_extract(column, literal_column(f"'$.{'.'.join(path)}'"))
