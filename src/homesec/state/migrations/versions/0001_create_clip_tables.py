"""Create clip_states and clip_events with their indexes.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

The DDL is frozen here rather than taken from `tables.py`, so later schema changes stay in
later migrations. The expression indexes differ per dialect: `data->>'key'` on Postgres,
`json_extract(data, '$.key')` on SQLite (the same expressions `tables.json_text` queries with).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_INDEXED_KEYS = {"idx_clip_states_status": "status", "idx_clip_states_camera": "camera_name"}


def upgrade() -> None:
    op.create_table(
        "clip_states",
        sa.Column("clip_id", sa.Text(), primary_key=True),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    for name, key in _INDEXED_KEYS.items():
        op.create_index(name, "clip_states", [_json_key_expression(key)])

    op.create_table(
        "clip_events",
        sa.Column("id", _EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("clip_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", _JSON, nullable=False),
    )
    op.create_index("idx_clip_events_clip_id", "clip_events", ["clip_id"])


def downgrade() -> None:
    op.drop_table("clip_events")
    op.drop_table("clip_states")


def _json_key_expression(key: str) -> sa.TextClause:
    if op.get_bind().dialect.name == "postgresql":
        return sa.text(f"(data->>'{key}')")
    return sa.text(f"json_extract(data, '$.{key}')")
