"""Clip states in many shapes, stored with chosen received times, for API and query tests.

`insert_states` writes rows with an explicit `created_at` in one statement (the repository
always stamps "now", and pages, time filters and per-day stats need a spread of times).
Everything else about a row is what `ClipRepository.save` writes: `model_dump(mode="json")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from homesec.models.alert import AlertDecision
from homesec.models.config import StateStoreConfig
from homesec.models.enums import RiskLevel, StageName, StageStatus
from homesec.models.results import AnalysisResult, Detection, EntityEvent, FilterResult, VLMUsage
from homesec.models.state import ClipStateData, StageLog
from homesec.state.search import search_text
from homesec.state.store import database_url
from homesec.state.tables import clip_search, clip_states

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def clip_state(
    camera: str,
    unix_seconds: int,
    *,
    classes: Sequence[str] = ("person",),
    risk: RiskLevel | None = RiskLevel.HIGH,
    activity: str = "person_at_door",
    alerted: bool | None = True,
    failed_stage: StageName | None = None,
    tokens: tuple[int, int] = (1200, 80),
    cost_usd: float | None = 0.002,
    local_path: str | None = None,
) -> ClipStateData:
    """A finished clip: filter result, VLM analysis (unless `risk` is None) and a decision."""
    clip_id = f"{camera}_{unix_seconds}.mp4"
    state = ClipStateData(
        clip_id=clip_id,
        camera_name=camera,
        local_path=local_path or f"/nonexistent/spool/{clip_id}",
        start_ts=datetime.fromtimestamp(unix_seconds, UTC),
    )
    for stage in StageName:
        state.stages[stage] = StageLog(status=StageStatus.OK, attempts=1)
    state.filter_result = FilterResult(
        detected_classes=list(classes),
        confidence=0.9 if classes else 0.0,
        sampled_frames=10,
        model="yolox_nano",
        detections=[
            Detection(class_name=name, confidence=0.9, first_seen_s=1.5, box=(10, 20, 110, 220))
            for name in classes
        ],
    )
    if risk is None:
        state.stages[StageName.VLM] = StageLog(status=StageStatus.SKIPPED)
    else:
        state.analysis_result = AnalysisResult(
            risk_level=risk,
            activity_type=activity,
            summary=f"{activity} seen by {camera}",
            entities_timeline=[EntityEvent(time_s=2.0, entity="person", action="walks in")],
            usage=VLMUsage(
                input_tokens=tokens[0], output_tokens=tokens[1], estimated_cost_usd=cost_usd
            ),
        )
    if alerted is not None:
        state.alert_decision = AlertDecision(notify=alerted, notify_reason="test policy")
    if failed_stage is not None:
        state.stages[failed_stage] = StageLog(
            status=StageStatus.ERROR, attempts=3, last_error="scripted failure"
        )
    return state


def varied_clips() -> list[ClipStateData]:
    """Four clips that each filter tells apart, oldest first.

    front_door_1700000000: person, high risk, alerted
    front_door_1700000001: person and car, a delivery, alerted
    backyard_1700000002:   person, low risk, not alerted
    backyard_1700000003:   nothing detected, VLM skipped, no decision, upload failed (error)
    """
    return [
        clip_state("front_door", 1_700_000_000),
        clip_state("front_door", 1_700_000_001, classes=["person", "car"], activity="delivery"),
        clip_state("backyard", 1_700_000_002, risk=RiskLevel.LOW, alerted=False),
        clip_state(
            "backyard",
            1_700_000_003,
            classes=[],
            risk=None,
            alerted=None,
            failed_stage=StageName.UPLOAD,
        ),
    ]


def spread(
    states: Sequence[ClipStateData], step: timedelta = timedelta(minutes=1)
) -> list[tuple[ClipStateData, datetime]]:
    """Received times T0, T0+step, ... in the order given (the last is the newest)."""
    return [(state, T0 + index * step) for index, state in enumerate(states)]


async def insert_states(
    config: StateStoreConfig, rows: Sequence[tuple[ClipStateData, datetime]]
) -> None:
    """Store states with the given received times, and their search text, as the repository
    would (the schema must exist: start a repo first)."""
    engine = create_async_engine(database_url(config))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(clip_states),
                [
                    {
                        "clip_id": state.clip_id,
                        "data": state.model_dump(mode="json"),
                        "created_at": received,
                        "updated_at": received,
                    }
                    for state, received in rows
                ],
            )
            await conn.execute(
                insert(clip_search),
                [
                    {
                        "clip_id": state.clip_id,
                        "search_text": search_text(state.model_dump(mode="json")),
                    }
                    for state, _ in rows
                ],
            )
    finally:
        await engine.dispose()
