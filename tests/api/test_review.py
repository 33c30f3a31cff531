"""Needs review: the VLM's `requires_review` as a filter, a badge and a "mark reviewed"
action, on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

from homesec.models.enums import EventType, StageName, StageStatus
from homesec.models.state import ClipStateData, StageLog
from tests.api.conftest import ApiHarness
from tests.api.seeding import clip_state


def _asking_review(unix_seconds: int) -> ClipStateData:
    state = clip_state("front_door", unix_seconds)
    assert state.analysis_result is not None
    state.analysis_result.requires_review = True
    return state


async def _listed(api: ApiHarness, **params: Any) -> list[str]:
    response = await api.client.get("/api/v1/clips", params=params)
    assert response.status_code == 200, response.text
    return [item["clip_id"] for item in response.json()["items"]]


async def test_a_clip_the_vlm_wants_reviewed_is_listed_until_someone_marks_it(
    api: ApiHarness,
) -> None:
    # Given a clip the VLM asks a person to review, and one it does not
    asking, plain = _asking_review(1_700_000_000), clip_state("front_door", 1_700_000_100)
    for state in (asking, plain):
        assert await api.repository.save(state)

    # When the list is filtered, the clip marked reviewed, and the list filtered again
    before = await _listed(api, needs_review="true")
    others = await _listed(api, needs_review="false")
    marked = await api.client.post(f"/api/v1/clips/{asking.clip_id}/reviewed")
    after = await _listed(api, needs_review="true")
    again = await api.client.post(f"/api/v1/clips/{asking.clip_id}/reviewed")

    # Then it is listed (with its badge) only until it is marked; marking is recorded once
    # and a second mark changes nothing
    assert before == [asking.clip_id] and others == [plain.clip_id]
    assert marked.status_code == 200, marked.text
    assert marked.json()["clip"]["needs_review"] is False
    assert after == [] and set(await _listed(api, needs_review="false")) == {
        asking.clip_id,
        plain.clip_id,
    }
    assert again.status_code == 200
    events = [e["event_type"] for e in marked.json()["events"]]
    assert events.count(EventType.CLIP_REVIEWED) == 1
    assert [e["event_type"] for e in again.json()["events"]].count(EventType.CLIP_REVIEWED) == 1


async def test_marking_an_unknown_or_unfinished_clip_is_refused(api: ApiHarness) -> None:
    # Given a clip still being processed (its VLM stage running), and one in error (a
    # background round takes it up again from its own copy of the state)
    running = _asking_review(1_700_000_200)
    running.stages[StageName.VLM] = StageLog(status=StageStatus.RUNNING, attempts=1)
    failed = _asking_review(1_700_000_300)
    failed.stages[StageName.NOTIFY] = StageLog(status=StageStatus.ERROR, attempts=3)
    for state in (running, failed):
        assert await api.repository.save(state)

    # When they and an unknown clip are marked reviewed
    busy = await api.client.post(f"/api/v1/clips/{running.clip_id}/reviewed")
    retried = await api.client.post(f"/api/v1/clips/{failed.clip_id}/reviewed")
    unknown = await api.client.post("/api/v1/clips/front_door_1600000000.mp4/reviewed")

    # Then the first two are conflicts (a journal would write over the mark), the last 404
    assert busy.status_code == 409 and "not done yet" in busy.json()["detail"]
    assert retried.status_code == 409 and "not done yet" in retried.json()["detail"]
    assert unknown.status_code == 404
