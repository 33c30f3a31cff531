"""`/api/v1/clips`: the filtered, cursor-paged list and one clip, on SQLite and Postgres."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from homesec.models.enums import EventType, StageName, StageStatus
from homesec.models.events import ClipEvent
from homesec.models.state import StageLog
from tests.api.conftest import DSN_ENV, ApiHarness, ServeApi
from tests.api.seeding import T0, clip_state, insert_states, spread, varied_clips


async def _walk(client: httpx.AsyncClient, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        response = await client.get("/api/v1/clips", params={**params, "cursor": cursor or ""})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_pagination_walks_a_few_hundred_clips_newest_first(api: ApiHarness) -> None:
    # Given 320 clips of two cameras received a minute apart
    states = [
        clip_state("front_door" if n % 2 else "backyard", 1_700_000_000 + n) for n in range(320)
    ]
    await insert_states(api.config.state_store, spread(states))

    # When every page of 50 is followed through its cursor
    pages = await _walk(api.client, {"limit": 50})

    # Then all 320 come back once, newest first, in pages of 50 and a last one of 20
    clip_ids = [item["clip_id"] for page in pages for item in page]
    assert clip_ids == [state.clip_id for state in reversed(states)]
    assert [len(page) for page in pages] == [50] * 6 + [20]


async def test_pagination_keeps_the_filter_across_pages(api: ApiHarness) -> None:
    # Given 300 clips, every third one of the camera "garage"
    states = [
        clip_state("garage" if n % 3 == 0 else "porch", 1_700_000_000 + n) for n in range(300)
    ]
    await insert_states(api.config.state_store, spread(states))

    # When the garage's clips are paged 30 at a time
    pages = await _walk(api.client, {"camera": "garage", "limit": 30})

    # Then exactly its 100 clips come back, in 4 pages
    clip_ids = [item["clip_id"] for page in pages for item in page]
    assert len(clip_ids) == 100 and len(set(clip_ids)) == 100
    assert all(clip_id.startswith("garage_") for clip_id in clip_ids)
    assert [len(page) for page in pages] == [30, 30, 30, 10]


FILTER_CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "camera": ({"camera": "backyard"}, ["backyard_1700000003.mp4", "backyard_1700000002.mp4"]),
    "status": ({"status": "error"}, ["backyard_1700000003.mp4"]),
    "risk": ({"risk_level": "low"}, ["backyard_1700000002.mp4"]),
    "activity": ({"activity_type": "delivery"}, ["front_door_1700000001.mp4"]),
    "alerted": (
        {"alerted": "true"},
        ["front_door_1700000001.mp4", "front_door_1700000000.mp4"],
    ),
    "not alerted": (
        {"alerted": "false"},
        ["backyard_1700000003.mp4", "backyard_1700000002.mp4"],
    ),
    "class": ({"detected_class": "car"}, ["front_door_1700000001.mp4"]),
    "time range": (
        {
            "since": (T0 + timedelta(minutes=1)).isoformat(),
            "until": (T0 + timedelta(minutes=3)).isoformat(),
        },
        ["backyard_1700000002.mp4", "front_door_1700000001.mp4"],
    ),
}


async def test_filters_narrow_the_list(api: ApiHarness) -> None:
    # Given four clips with different cameras, detections, analyses and outcomes
    await insert_states(api.config.state_store, spread(varied_clips()))

    # When the list is asked for with each filter as query parameters
    found: dict[str, list[str]] = {}
    for name, (params, _) in FILTER_CASES.items():
        response = await api.client.get("/api/v1/clips", params=params)
        assert response.status_code == 200, response.text
        found[name] = [item["clip_id"] for item in response.json()["items"]]

    # Then each returns only the matching clips, newest first
    assert found == {name: expected for name, (_, expected) in FILTER_CASES.items()}


async def test_a_list_item_summarizes_the_clip_with_signed_media_links(api: ApiHarness) -> None:
    # Given one analyzed, alerted clip
    state = clip_state("front_door", 1_700_000_000, classes=["person", "dog"])
    await insert_states(api.config.state_store, [(state, T0)])

    # When the list is read
    item = (await api.client.get("/api/v1/clips")).json()["items"][0]

    # Then the item carries the analysis, the decision and signed video and snapshot URLs
    assert item["risk_level"] == "high" and item["activity_type"] == "person_at_door"
    assert item["summary"] == "person_at_door seen by front_door"
    assert item["detected_classes"] == ["person", "dog"]
    assert item["alerted"] is True and item["status"] == "done"
    assert item["received_at"].startswith("2024-05-01T12:00:00")
    assert item["video_url"].startswith("/api/v1/clips/front_door_1700000000.mp4/video?exp=")
    assert "&sig=" in item["snapshot_url"]


async def test_one_clip_comes_with_its_state_events_analysis_and_detections(
    api: ApiHarness,
) -> None:
    # Given a clip saved through the repository with its lifecycle events
    state = clip_state("front_door", 1_700_000_000)
    await api.repository.save(
        state,
        ClipEvent(clip_id=state.clip_id, event_type=EventType.CLIP_RECEIVED),
        ClipEvent(clip_id=state.clip_id, event_type=EventType.CLIP_DONE),
    )

    # When that clip is read
    response = await api.client.get(f"/api/v1/clips/{state.clip_id}")

    # Then it has its summary, stage journal, detections, analysis and events in order
    assert response.status_code == 200
    body = response.json()
    assert body["clip"]["clip_id"] == state.clip_id
    assert body["analysis"]["entities_timeline"][0]["action"] == "walks in"
    assert body["analysis"]["risk_level"] == "high"
    assert body["filter_result"]["detections"][0]["class_name"] == "person"
    assert body["stages"]["vlm"]["status"] == "ok"
    assert body["alert_decision"]["notify"] is True
    assert [event["event_type"] for event in body["events"]] == ["clip_received", "clip_done"]


BAD_REQUESTS: dict[str, tuple[str, dict[str, str], int]] = {
    "unknown clip": ("/api/v1/clips/nobody_1700000000.mp4", {}, 404),
    "forged cursor": ("/api/v1/clips", {"cursor": "garbage!"}, 400),
    "empty page": ("/api/v1/clips", {"limit": "0"}, 422),
    "page too large": ("/api/v1/clips", {"limit": "201"}, 422),
    "unknown risk": ("/api/v1/clips", {"risk_level": "extreme"}, 422),
    "unknown parameter": ("/api/v1/clips", {"colour": "red"}, 422),
}


async def test_bad_requests_are_refused_with_a_clear_status(api: ApiHarness) -> None:
    # Given the API on an empty database
    # When a missing clip, a forged cursor or invalid parameters are asked for
    statuses = {
        name: (await api.client.get(path, params=params)).status_code
        for name, (path, params, _) in BAD_REQUESTS.items()
    }

    # Then each answer says which kind of problem it is
    assert statuses == {name: expected for name, (_, _, expected) in BAD_REQUESTS.items()}


async def test_reads_answer_503_while_the_database_is_down(
    serve_sqlite_api: ServeApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the API on a Postgres that is down
    monkeypatch.setenv(DSN_ENV, "postgresql://homesec@127.0.0.1:9/none")
    async with serve_sqlite_api(api_key=None) as api:
        # When clips, one clip and the stats are asked for
        responses = [
            await api.client.get("/api/v1/clips"),
            await api.client.get("/api/v1/clips/front_door_1700000000.mp4"),
            await api.client.get("/api/v1/stats"),
        ]

    # Then each answers 503 (unknown), never an empty list or a 404
    assert [response.status_code for response in responses] == [503, 503, 503]


async def test_the_openapi_schema_describes_the_versioned_api(api: ApiHarness) -> None:
    # Given the API
    # When its OpenAPI schema is fetched
    response = await api.client.get("/api/v1/openapi.json")

    # Then it lists the clip, media, camera, stats and health routes with their bodies
    assert response.status_code == 200
    schema = response.json()
    assert {
        "/api/v1/clips",
        "/api/v1/clips/{clip_id}",
        "/api/v1/clips/{clip_id}/video",
        "/api/v1/clips/{clip_id}/snapshot",
        "/api/v1/cameras",
        "/api/v1/stats",
        "/api/v1/health",
    } <= set(schema["paths"])
    assert {"ClipSummary", "ClipPageOut", "ClipDetail", "ClipStats"} <= set(
        schema["components"]["schemas"]
    )
    list_params = {p["name"] for p in schema["paths"]["/api/v1/clips"]["get"]["parameters"]}
    assert {"camera", "risk_level", "detected_class", "since", "cursor", "limit"} <= list_params


async def test_a_clip_whose_upload_failed_says_so(api: ApiHarness) -> None:
    # Given a clip as the pipeline records a failed upload: pending, retried in the background
    state = clip_state("front_door", 1_700_000_100)
    state.stages[StageName.UPLOAD] = StageLog(
        status=StageStatus.PENDING, attempts=3, last_error="upload to s3 failed: timed out"
    )
    await insert_states(api.config.state_store, spread([state]))

    # When the clip is listed and read
    listed = (await api.client.get("/api/v1/clips")).json()["items"]
    one = (await api.client.get(f"/api/v1/clips/{state.clip_id}")).json()

    # Then both say its upload failed (the UI shows the badge from this)
    assert [item["upload_failed"] for item in listed] == [True]
    assert one["clip"]["upload_failed"] is True
