"""Full-text search over the clips: the `clip_search` table and its index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

One row per clip with its searchable text (`search.py`), next to clip_states (which keeps
SPEC's exact columns). Postgres: a generated `search_vector` (tsvector, English stemming)
with a GIN index. SQLite: an FTS5 table `clip_search_index` (Porter stemming) with
clip_search as its external content, kept in step by triggers. Existing clips get their
text here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from homesec.state.search import search_text

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_BATCH = 500

_SQLITE_INDEX = [
    "CREATE VIRTUAL TABLE clip_search_index USING fts5(search_text, content='clip_search', "
    "content_rowid='rowid', tokenize='porter unicode61')",
    "CREATE TRIGGER clip_search_insert AFTER INSERT ON clip_search BEGIN "
    "INSERT INTO clip_search_index(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER clip_search_delete AFTER DELETE ON clip_search BEGIN "
    "INSERT INTO clip_search_index(clip_search_index, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER clip_search_update AFTER UPDATE ON clip_search BEGIN "
    "INSERT INTO clip_search_index(clip_search_index, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO clip_search_index(rowid, search_text) VALUES (new.rowid, new.search_text); END",
]


def upgrade() -> None:
    op.create_table(
        "clip_search",
        sa.Column("clip_id", sa.Text(), primary_key=True),
        sa.Column("search_text", sa.Text(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE clip_search ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english', search_text)) STORED"
        )
        op.create_index(
            "idx_clip_search_vector", "clip_search", ["search_vector"], postgresql_using="gin"
        )
    else:
        for statement in _SQLITE_INDEX:
            op.execute(statement)
    _backfill()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER clip_search_{trigger}")
        op.execute("DROP TABLE clip_search_index")
    op.drop_table("clip_search")


def _backfill() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT clip_id, data FROM clip_states")).all()
    texts: list[dict[str, Any]] = []
    for clip_id, data in rows:
        document = data if isinstance(data, dict) else json.loads(data)
        texts.append({"clip_id": clip_id, "search_text": search_text(document)})
    for start in range(0, len(texts), _BACKFILL_BATCH):
        connection.execute(
            sa.text(
                "INSERT INTO clip_search (clip_id, search_text) VALUES (:clip_id, :search_text)"
            ),
            texts[start : start + _BACKFILL_BATCH],
        )
