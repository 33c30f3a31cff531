"""Helpers for end-to-end tests: drop clips like a camera would, read the database raw."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import asyncpg

from homesec.models.enums import ClipStatus
from homesec.models.state import ClipStateData


def drop_clip(media: Path, watch_dir: Path, name: str) -> Path:
    """Write a clip into a watched folder the way an uploader does (then it settles)."""
    watch_dir.mkdir(parents=True, exist_ok=True)
    target = watch_dir / name
    shutil.copyfile(media, target)
    return target


async def clip_rows(dsn: str, clip_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The raw `clip_states.data` and `clip_events` rows of a clip."""
    connection = await asyncpg.connect(dsn)
    try:
        state = await connection.fetchval("SELECT data FROM clip_states WHERE clip_id=$1", clip_id)
        events = await connection.fetch(
            "SELECT event_type, data FROM clip_events WHERE clip_id=$1 ORDER BY id", clip_id
        )
    finally:
        await connection.close()
    return (
        json.loads(state) if state is not None else None,
        [{"event_type": row["event_type"], **json.loads(row["data"])} for row in events],
    )


async def wait_for_state(
    dsn: str, clip_id: str, status: ClipStatus = ClipStatus.DONE, timeout: float = 30.0
) -> ClipStateData:
    """Poll the database until the clip reaches `status`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: dict[str, Any] | None = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last, _ = await clip_rows(dsn, clip_id)
        except (OSError, asyncpg.PostgresError):
            last = None
        if last is not None and last.get("status") == status:
            return ClipStateData.from_stored(clip_id, last)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{clip_id} did not reach {status} within {timeout} s: {last}")
