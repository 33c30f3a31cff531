"""Index clip_states for newest-first pages; add the log_records table of the log sink.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01

`idx_clip_states_created` serves the clips API: newest first, keyset-paged on
(created_at, clip_id). On Postgres, `idx_clip_states_classes` (GIN over the detected classes)
finds the clips of a rare class without reading every row. `log_records` receives log lines
with their structured extras when the Postgres log sink is on (`homesec.telemetry_db`); it is
created on SQLite too, so both engines keep one schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_CLASSES = "(data -> 'filter_result' -> 'detected_classes')"  # as queries._has_class writes it


def upgrade() -> None:
    op.create_index("idx_clip_states_created", "clip_states", ["created_at", "clip_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "idx_clip_states_classes", "clip_states", [sa.text(_CLASSES)], postgresql_using="gin"
        )
    op.create_table(
        "log_records",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("logger", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text()),
        sa.Column("camera_name", sa.Text()),
        sa.Column("clip_id", sa.Text()),
        sa.Column("extras", _JSON, nullable=False),
    )
    op.create_index("idx_log_records_ts", "log_records", ["ts"])
    op.create_index("idx_log_records_clip_id", "log_records", ["clip_id"])


def downgrade() -> None:
    op.drop_table("log_records")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("idx_clip_states_classes", table_name="clip_states")
    op.drop_index("idx_clip_states_created", table_name="clip_states")
