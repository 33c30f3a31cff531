"""SQL of the `log_records` table: batched inserts and retention (`telemetry_db.py` runs it).

Functions take a connection and the dialect, like `queries.py`, and run inside
`StateStore.run_write`'s transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from homesec.state.tables import log_records


async def insert_records(
    conn: AsyncConnection, dialect: str, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Append rows (the columns of `log_records` but `id`); returns how many."""
    if rows:
        await conn.execute(insert(log_records), list(rows))
    return len(rows)


async def prune_records(
    conn: AsyncConnection, dialect: str, older_than: datetime, keep_newest: int
) -> int:
    """Delete records older than `older_than`, then all but the newest `keep_newest`."""
    by_age = await conn.execute(delete(log_records).where(log_records.c.ts < older_than))
    # The id of the first record beyond the cap; NULL (nothing deleted) when under it.
    boundary = (
        select(log_records.c.id)
        .order_by(log_records.c.id.desc())
        .offset(keep_newest)
        .limit(1)
        .scalar_subquery()
    )
    by_count = await conn.execute(delete(log_records).where(log_records.c.id <= boundary))
    return int(by_age.rowcount or 0) + int(by_count.rowcount or 0)
