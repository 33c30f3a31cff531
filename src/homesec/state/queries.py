"""SQL of the clip tables: state upserts and events, reads by id, filtered newest-first
pages, statistics, camera activity.

Clips are ordered by `created_at` (when HomeSec first recorded the clip's state) and paged
by keyset on (created_at, clip_id), which `idx_clip_states_created` serves: a page costs the
same at the end of 100,000 clips as at the start, and clips arriving meanwhile never shift
a page. Every function takes a connection and the dialect (`StateStore.run_read`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Select

from homesec.models.enums import ClipStatus, StageName
from homesec.models.events import ClipEvent
from homesec.models.queries import (
    CameraActivity,
    ClipFilter,
    ClipStats,
    DayCount,
    PageKey,
    VLMSpend,
    as_utc,
)
from homesec.models.search import SearchQuery
from homesec.state.search import search_text
from homesec.state.tables import (
    POSTGRES,
    clip_events,
    clip_search,
    clip_states,
    json_path_text,
    json_text,
    settings,
)

_data = clip_states.c.data
_received = clip_states.c.created_at
# Listed documents come back as JSON text: pydantic-core parses it faster than the driver's
# json.loads, and a page of 50 states is most of a list request's work.
_data_text = cast(_data, Text).label("document")
_listed = select(clip_states.c.clip_id, _received, clip_states.c.updated_at, _data_text)
_MAX_IDS_PER_QUERY = 500  # stays far below SQLite's bound-parameter limit

JsonDocument = dict[str, Any]


@dataclass(frozen=True)
class ClipRow:
    clip_id: str
    created_at: datetime
    updated_at: datetime | None
    document: str
    """`clip_states.data` as JSON text."""


@dataclass(frozen=True)
class StoredSetting:
    """A setting as the database holds it: its JSON document, or None when never saved."""

    document: JsonDocument | None


async def save_state(
    conn: AsyncConnection,
    dialect: str,
    clip_id: str,
    document: JsonDocument,
    events: Sequence[ClipEvent],
) -> None:
    """Upsert the state document and append the events (one transaction: `run_write`)."""
    # Timestamps come from Python: one clock for both engines, and microseconds where
    # SQLite's CURRENT_TIMESTAMP has whole seconds (fetch_unfinished orders by created_at).
    now = datetime.now(UTC)
    row = {"clip_id": clip_id, "data": document, "created_at": now, "updated_at": now}
    upsert = _insert(clip_states, dialect).values(row)
    changes = {"data": upsert.excluded.data, "updated_at": upsert.excluded.updated_at}
    await conn.execute(
        upsert.on_conflict_do_update(index_elements=[clip_states.c.clip_id], set_=changes)
    )
    await _save_search_text(conn, dialect, clip_id, search_text(document))
    await append_events(conn, dialect, events)


async def _save_search_text(conn: AsyncConnection, dialect: str, clip_id: str, text: str) -> None:
    """Upsert the clip's search text; written (and re-indexed) only when it changed."""
    row = {"clip_id": clip_id, "search_text": text}
    upsert = _insert(clip_search, dialect).values(row)
    changed = clip_search.c.search_text.is_distinct_from(upsert.excluded.search_text)
    await conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[clip_search.c.clip_id],
            set_={"search_text": upsert.excluded.search_text},
            where=changed,
        )
    )


async def delete_clip(conn: AsyncConnection, dialect: str, clip_id: str, event: ClipEvent) -> None:
    """Remove the clip's state and search text; its events stay, with `event` saying why."""
    await conn.execute(delete(clip_states).where(clip_states.c.clip_id == clip_id))
    await conn.execute(delete(clip_search).where(clip_search.c.clip_id == clip_id))
    await append_events(conn, dialect, [event])


async def save_setting(
    conn: AsyncConnection, dialect: str, key: str, document: JsonDocument
) -> None:
    row = {"key": key, "data": document, "updated_at": datetime.now(UTC)}
    upsert = _insert(settings, dialect).values(row)
    changes = {"data": upsert.excluded.data, "updated_at": upsert.excluded.updated_at}
    await conn.execute(upsert.on_conflict_do_update(index_elements=[settings.c.key], set_=changes))


async def fetch_setting(conn: AsyncConnection, dialect: str, key: str) -> StoredSetting:
    found = await conn.scalar(select(settings.c.data).where(settings.c.key == key))
    return StoredSetting(dict(found) if found is not None else None)


def _insert(table: Table, dialect: str) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can turn into an upsert (`on_conflict_do_update`) on either engine."""
    return postgresql.insert(table) if dialect == POSTGRES else sqlite.insert(table)


async def append_events(conn: AsyncConnection, dialect: str, events: Sequence[ClipEvent]) -> None:
    rows = [
        {
            "clip_id": event.clip_id,
            "event_type": event.event_type.value,
            "ts": event.ts.astimezone(UTC),
            "data": event.model_dump(mode="json"),
        }
        for event in events
    ]
    if rows:
        await conn.execute(insert(clip_events), rows)


async def list_clips(
    conn: AsyncConnection,
    dialect: str,
    clip_filter: ClipFilter,
    after: PageKey | None,
    limit: int,
) -> list[ClipRow]:
    """Up to `limit` clips matching the filter, newest first, strictly after `after`."""
    query = clip_list_query(dialect, clip_filter, after, limit)
    return [_row(row) for row in await conn.execute(query)]


def clip_list_query(
    dialect: str, clip_filter: ClipFilter, after: PageKey | None, limit: int
) -> Select[tuple[str, datetime, datetime, str]]:
    """The statement behind `list_clips` (also for checking how the database plans it)."""
    conditions = _conditions(clip_filter, dialect)
    if after is not None:
        last = tuple_(_bind_time(after.created_at), after.clip_id)
        conditions.append(tuple_(_received, clip_states.c.clip_id) < last)
    return (
        _listed.where(*conditions)
        .order_by(_received.desc(), clip_states.c.clip_id.desc())
        .limit(limit)
    )


async def fetch_clip(conn: AsyncConnection, dialect: str, clip_id: str) -> ClipRow | None:
    row = (await conn.execute(_listed.where(clip_states.c.clip_id == clip_id))).first()
    return None if row is None else _row(row)


async def fetch_state(conn: AsyncConnection, dialect: str, clip_id: str) -> JsonDocument | None:
    query = select(_data).where(clip_states.c.clip_id == clip_id)
    document: JsonDocument | None = (await conn.execute(query)).scalar_one_or_none()
    return document


async def has_clip(conn: AsyncConnection, dialect: str, clip_id: str) -> bool:
    query = select(exists().where(clip_states.c.clip_id == clip_id))
    return bool((await conn.execute(query)).scalar())


async def fetch_states(
    conn: AsyncConnection, dialect: str, clip_ids: Sequence[str]
) -> dict[str, JsonDocument]:
    found: dict[str, JsonDocument] = {}
    for start in range(0, len(clip_ids), _MAX_IDS_PER_QUERY):
        chunk = clip_ids[start : start + _MAX_IDS_PER_QUERY]
        query = select(clip_states.c.clip_id, _data).where(clip_states.c.clip_id.in_(chunk))
        found.update({row.clip_id: row.data for row in await conn.execute(query)})
    return found


async def fetch_unfinished(
    conn: AsyncConnection, dialect: str, limit: int
) -> list[tuple[str, JsonDocument]]:
    """(clip_id, document) of every clip not `done`, newest first."""
    status = json_text(_data, "status", dialect)
    query = (
        select(clip_states.c.clip_id, _data)
        .where(or_(status.is_(None), status != ClipStatus.DONE.value))
        .order_by(_received.desc(), clip_states.c.clip_id.desc())
        .limit(limit)
    )
    return [(row.clip_id, row.data) for row in await conn.execute(query)]


async def fetch_events(conn: AsyncConnection, dialect: str, clip_id: str) -> list[JsonDocument]:
    """The event documents of one clip in the order they were appended."""
    query = (
        select(clip_events.c.data)
        .where(clip_events.c.clip_id == clip_id)
        .order_by(clip_events.c.id)
    )
    return list((await conn.execute(query)).scalars())


async def clip_stats(
    conn: AsyncConnection, dialect: str, since: datetime, until: datetime
) -> ClipStats:
    window = and_(_received >= _bind_time(since), _received < _bind_time(until))
    alerted = _count(_is_true(("alert_decision", "notify"), dialect))
    errors = _count(json_text(_data, "status", dialect) == ClipStatus.ERROR.value)
    failures = [
        _count(json_path_text(_data, ("stages", stage.value, "status"), dialect) == "error")
        for stage in StageName
    ]
    usage = ("analysis_result", "usage")
    totals = select(
        func.count(),
        alerted,
        errors,
        *failures,
        func.count(json_path_text(_data, (*usage, "input_tokens"), dialect)),
        func.sum(cast(json_path_text(_data, (*usage, "input_tokens"), dialect), Integer)),
        func.sum(cast(json_path_text(_data, (*usage, "output_tokens"), dialect), Integer)),
        func.sum(cast(json_path_text(_data, (*usage, "estimated_cost_usd"), dialect), Float)),
    ).where(window)
    # Two statements, outside a transaction on Postgres (run_read): a clip landing in between
    # may show in one and not the other, which statistics can live with.
    clips, alerts, error_count, *stage_counts, vlm_clips, tokens_in, tokens_out, cost = (
        await conn.execute(totals)
    ).one()
    day = _day(dialect)
    per_day = select(day, func.count(), alerted, errors).where(window).group_by(day).order_by(day)
    return ClipStats(
        since=since,
        until=until,
        clips=clips,
        alerts=alerts or 0,
        errors=error_count or 0,
        per_day=[
            DayCount(day=date.fromisoformat(d), clips=n, alerts=a or 0, errors=e or 0)
            for d, n, a, e in await conn.execute(per_day)
        ],
        stage_failures={
            stage: count or 0 for stage, count in zip(StageName, stage_counts, strict=True)
        },
        vlm=VLMSpend(
            analyzed_clips=vlm_clips,
            input_tokens=tokens_in or 0,
            output_tokens=tokens_out or 0,
            estimated_cost_usd=round(cost or 0.0, 6),
        ),
    )


async def camera_activity(conn: AsyncConnection, dialect: str) -> list[CameraActivity]:
    """Clip count and latest clip per camera name found in the state table."""
    camera = json_text(_data, "camera_name", dialect)
    query = select(camera, func.count(), func.max(_received)).group_by(camera).order_by(camera)
    return [
        CameraActivity(camera_name=name, clips=count, last_clip_at=as_utc(last) if last else None)
        for name, count, last in await conn.execute(query)
    ]


async def review_counts(conn: AsyncConnection, dialect: str) -> dict[str, int]:
    """Per camera, the clips that wait for a person's review (none: not listed)."""
    camera = json_text(_data, "camera_name", dialect)
    waiting = _conditions(ClipFilter(needs_review=True), dialect)
    query = select(camera, func.count()).where(*waiting).group_by(camera)
    return {name: count for name, count in await conn.execute(query)}


def _conditions(clip_filter: ClipFilter, dialect: str) -> list[ColumnElement[bool]]:
    def field(*path: str) -> ColumnElement[Any]:
        return json_path_text(_data, path, dialect)

    conditions: list[ColumnElement[bool]] = []
    if clip_filter.camera is not None:
        conditions.append(json_text(_data, "camera_name", dialect) == clip_filter.camera)
    if clip_filter.status is not None:
        conditions.append(json_text(_data, "status", dialect) == clip_filter.status.value)
    if clip_filter.risk_level is not None:
        conditions.append(field("analysis_result", "risk_level") == clip_filter.risk_level.label)
    if clip_filter.activity_type is not None:
        conditions.append(field("analysis_result", "activity_type") == clip_filter.activity_type)
    if clip_filter.alerted is not None:
        notified = _is_true(("alert_decision", "notify"), dialect)
        conditions.append(notified if clip_filter.alerted else not_(notified))
    if clip_filter.detected_class is not None:
        conditions.append(_has_class(clip_filter.detected_class, dialect))
    if clip_filter.needs_review is not None:
        waiting = and_(
            _is_true(("analysis_result", "requires_review"), dialect),
            field("reviewed_at").is_(None),
        )
        conditions.append(waiting if clip_filter.needs_review else not_(waiting))
    if clip_filter.q is not None and not (query := SearchQuery.parse(clip_filter.q)).is_empty:
        conditions.append(_matches(query, dialect))
    if clip_filter.since is not None:
        conditions.append(_received >= _bind_time(clip_filter.since))
    if clip_filter.until is not None:
        conditions.append(_received < _bind_time(clip_filter.until))
    return conditions


def _matches(query: SearchQuery, dialect: str) -> ColumnElement[bool]:
    if dialect == POSTGRES:
        # The generated column and GIN index of migration 0005 (English stemming).
        tsquery = func.to_tsquery(literal_column("'english'"), query.tsquery())
        matching = literal_column("search_vector").bool_op("@@")(tsquery)
        return clip_states.c.clip_id.in_(select(clip_search.c.clip_id).where(matching))
    # The FTS5 index of migration 0005 shares clip_search's rowids (external content).
    indexed: Select[tuple[Any]] = (
        select(literal_column("rowid"))
        .select_from(text("clip_search_index"))
        .where(text("clip_search_index MATCH :search_match").bindparams(search_match=query.fts5()))
    )
    found = select(clip_search.c.clip_id).where(literal_column("clip_search.rowid").in_(indexed))
    # The unary + keeps SQLite from looking up every match by clip_id and sorting them all
    # (a common word has thousands): it walks the listing index newest first instead and
    # stops after a page, testing each clip against the matches.
    return literal_column("+clip_states.clip_id").in_(found)


def _is_true(path: tuple[str, ...], dialect: str) -> ColumnElement[bool]:
    # Postgres' #>> gives the text 'true'; SQLite's json_extract gives the integer 1.
    # coalesce: a clip without a decision counts as "not alerted", never as unknown (NULL).
    value = json_path_text(_data, path, dialect)
    true: ColumnElement[Any] = literal_column("'true'" if dialect == POSTGRES else "1")
    return func.coalesce(value == true, false())


def _has_class(name: str, dialect: str) -> ColumnElement[bool]:
    if dialect == POSTGRES:
        # The expression of idx_clip_states_classes (GIN), so a rare class is found by index.
        classes = _data.op("->")(literal_column("'filter_result'")).op("->")(
            literal_column("'detected_classes'")
        )
        return classes.bool_op("@>")(cast(literal(json.dumps([name])), JSONB))
    each = func.json_each(_data, literal_column("'$.filter_result.detected_classes'")).table_valued(
        "value"
    )
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == name))


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _day(dialect: str) -> ColumnElement[str]:
    if dialect == POSTGRES:
        return func.to_char(func.timezone("UTC", _received), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", _received)


def _bind_time(moment: datetime) -> datetime:
    # SQLite stores UTC wall time without an offset and ignores tzinfo when binding.
    return as_utc(moment).astimezone(UTC)


def _row(row: Any) -> ClipRow:
    return ClipRow(row.clip_id, as_utc(row.created_at), row.updated_at, row.document)
