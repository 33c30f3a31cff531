"""Cameras, the system status and statistics, on SQLite and Postgres."""

from __future__ import annotations

from datetime import timedelta

from homesec.models.enums import StageName
from tests.api.conftest import ApiHarness
from tests.api.seeding import T0, clip_state, insert_states


async def test_stats_count_clips_alerts_failures_and_vlm_cost_per_day(api: ApiHarness) -> None:
    # Given two clips on one day (one alert) and one failed VLM stage the next day
    await insert_states(
        api.config.state_store,
        [
            (clip_state("front_door", 1_700_000_000, cost_usd=0.25), T0),
            (clip_state("front_door", 1_700_000_001, alerted=False), T0 + timedelta(hours=1)),
            (
                clip_state("front_door", 1_700_090_000, risk=None, failed_stage=StageName.VLM),
                T0 + timedelta(days=1),
            ),
        ],
    )

    # When the stats of those days are asked for
    response = await api.client.get(
        "/api/v1/stats",
        params={"since": T0.isoformat(), "until": (T0 + timedelta(days=2)).isoformat()},
    )

    # Then they count clips, alerts and errors per day, failures per stage and the VLM spend
    assert response.status_code == 200
    body = response.json()
    assert [(d["day"], d["clips"], d["alerts"]) for d in body["per_day"]] == [
        ("2024-05-01", 2, 1),
        ("2024-05-02", 1, 1),
    ]
    assert (body["clips"], body["alerts"], body["errors"]) == (3, 2, 1)
    assert body["stage_failures"] == {"upload": 0, "filter": 0, "vlm": 1, "notify": 0}
    assert body["vlm"]["input_tokens"] == 2400 and body["vlm"]["output_tokens"] == 160
    assert abs(body["vlm"]["estimated_cost_usd"] - 0.252) < 1e-9


async def test_an_empty_or_inverted_window_is_refused(api: ApiHarness) -> None:
    # Given the API
    # When stats are asked for a window that ends before it starts
    response = await api.client.get(
        "/api/v1/stats", params={"since": T0.isoformat(), "until": T0.isoformat()}
    )

    # Then it is a bad request
    assert response.status_code == 400


async def test_cameras_show_source_health_heartbeat_and_stored_clips(api: ApiHarness) -> None:
    # Given two stored clips of the configured camera and one of a camera no longer configured
    await insert_states(
        api.config.state_store,
        [
            (clip_state("front_door", 1_700_000_000), T0),
            (clip_state("front_door", 1_700_000_001), T0 + timedelta(minutes=5)),
            (clip_state("old_cam", 1_600_000_000), T0),
        ],
    )

    # When the cameras are listed
    response = await api.client.get("/api/v1/cameras")

    # Then each configured camera shows its source's health, heartbeat and stored clips
    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "front_door",
            "healthy": False,
            "last_heartbeat": None,
            "clips": 2,
            "last_clip_at": "2024-05-01T12:05:00Z",
        }
    ]


async def test_the_system_status_lists_components_cameras_and_notifiers(api: ApiHarness) -> None:
    # Given the API on a working database and storage, its source not started
    # When the system status is asked for
    response = await api.client.get("/api/v1/system")

    # Then every component is there, and the stopped camera makes the whole unhealthy
    assert response.status_code == 200
    body = response.json()
    assert {c["name"]: c["ok"] for c in body["components"]} == {
        "pipeline": True,
        "database": True,
        "storage": True,
    }
    assert body["status"] == "unhealthy"
    assert [camera["name"] for camera in body["cameras"]] == ["front_door"]
    assert body["clips_in_flight"] == 0
