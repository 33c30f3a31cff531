"""The clip list's filters are planned as a walk of the listing index, not a full read.

A plan is the part of the clips API's speed that a test can hold steady: with the table's
statistics, a filter that matches a good share of clips reads the newest rows through
`idx_clip_states_created` and stops after a page, whatever the machine's load.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

from homesec.models.config import StateStoreConfig
from homesec.models.enums import RiskLevel
from homesec.models.queries import ClipFilter
from homesec.repository.clip_repository import ClipRepository
from homesec.state.queries import clip_list_query
from homesec.state.tables import POSTGRES
from tests.api.seeding import T0, clip_state, insert_states

# Each test seeds and analyses a Postgres table large enough for its plan to count.
pytestmark = pytest.mark.slow

DSN_ENV = "HOMESEC_TEST_PLAN_DSN"


@pytest.fixture
async def clip_table(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[asyncpg.Connection]:
    """A migrated database holding 3,000 clips, a fifth of them high risk and alerted."""
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    config = StateStoreConfig(dsn_env=DSN_ENV)
    repository = ClipRepository.from_config(config)
    await repository.start()  # applies the migrations
    await repository.aclose()
    rng = random.Random(3)
    rows = []
    for n in range(3000):
        risk = rng.choice([None, *RiskLevel])
        state = clip_state(
            "front_door",
            1_700_000_000 + n,
            risk=risk,
            alerted=risk is not None and risk >= RiskLevel.MEDIUM,
        )
        rows.append((state, T0 + timedelta(minutes=n)))
    await insert_states(config, rows)
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("ANALYZE clip_states")
        yield conn
    finally:
        await conn.close()


def _sql(clip_filter: ClipFilter) -> str:
    query = clip_list_query(POSTGRES, clip_filter, None, 51)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # unannotated in SQLAlchemy
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize(
    "clip_filter",
    [
        ClipFilter(risk_level=RiskLevel.HIGH, alerted=True),
        ClipFilter(risk_level=RiskLevel.LOW),
        ClipFilter(alerted=False),
        ClipFilter(),
    ],
    ids=["high-and-alerted", "low", "not-alerted", "no-filter"],
)
async def test_a_common_filter_walks_the_listing_index(
    clip_table: asyncpg.Connection, clip_filter: ClipFilter
) -> None:
    # Given 3,000 analysed clips and a filter that matches a good share of them
    # When Postgres plans the first page of the clip list
    plan = "\n".join(row[0] for row in await clip_table.fetch("EXPLAIN " + _sql(clip_filter)))

    # Then it reads the newest rows by the listing index and never the whole table
    assert "idx_clip_states_created" in plan, plan
    assert "Seq Scan" not in plan, plan
