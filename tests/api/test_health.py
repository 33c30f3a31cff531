"""Health endpoints: public probes, versioned summary, diagnostics behind the API key."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

import tests.fakes.plugins
from tests.fakes.builders import make_config
from tests.fakes.running import running_app

SERVER = {"enabled": True, "host": "127.0.0.1", "port": 0}


async def test_health_probe_is_public_and_healthy(tmp_path: Path) -> None:
    # Given a running service on embedded defaults
    async with running_app(make_config(tmp_path, server=SERVER)) as app:
        assert app.server is not None
        base = f"http://127.0.0.1:{app.server.port}"

        # When the probes are called without a key
        async with httpx.AsyncClient(base_url=base) as client:
            probe = await client.get("/health")
            summary = await client.get("/api/v1/health")

    # Then both answer 200 healthy, the summary with each component and camera
    assert probe.status_code == 200 and probe.json() == {"status": "healthy"}
    body = summary.json()
    assert summary.status_code == 200 and body["status"] == "healthy"
    assert {c["name"]: c["ok"] for c in body["components"]} == {
        "pipeline": True,
        "database": True,
        "storage": True,
        "spool": True,
    }
    assert body["cameras"][0]["name"] == "front_door" and body["cameras"][0]["healthy"]


async def test_unreachable_storage_makes_the_service_unhealthy(tmp_path: Path) -> None:
    # Given a storage backend that is down
    config = make_config(
        tmp_path, server=SERVER, storage={"backend": "fake_failing_storage", "config": {}}
    )
    async with running_app(config) as app:
        assert app.server is not None
        # When the probe is called
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.server.port}") as client:
            probe = await client.get("/health")

    # Then it answers 503 unhealthy
    assert probe.status_code == 503 and probe.json() == {"status": "unhealthy"}


async def test_database_down_is_degraded_not_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Postgres DSN pointing at nothing
    monkeypatch.setenv("HOMESEC_TEST_DEAD_DSN", "postgresql://homesec@127.0.0.1:9/none")
    config = make_config(tmp_path, server=SERVER, state_store={"dsn_env": "HOMESEC_TEST_DEAD_DSN"})
    async with running_app(config) as app:
        assert app.server is not None
        # When the probe is called
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.server.port}") as client:
            probe = await client.get("/health")

    # Then the service still serves (clips keep flowing) but says it is degraded
    assert probe.status_code == 200 and probe.json() == {"status": "degraded"}


@pytest.mark.slow
async def test_a_vlm_that_gave_up_makes_the_service_degraded_until_it_answers(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a running service whose VLM is down
    down = tmp_path / "vlm-down"
    down.touch()
    vlm = {"backend": "fake_vlm", "config": {"fail_while": str(down)}}
    retry = {"max_attempts": 1, "backoff_s": 0.01, "rerun_initial_s": 0.1}
    config = make_config(tmp_path, server=SERVER, vlm=vlm, retry=retry)
    async with running_app(config) as app:
        assert app.server is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.server.port}") as client:

            async def health() -> dict[str, Any]:
                answer: dict[str, Any] = (await client.get("/api/v1/health")).json()
                return answer

            # When a clip with a person arrives and its analysis fails
            shutil.copyfile(person_clip, tmp_path / "inbox" / "front_door" / "visitor.mp4")
            async with asyncio.timeout(10):
                while (during := await health())["status"] == "healthy":
                    await asyncio.sleep(0.05)

            # And then the VLM answers again (the clip's next round succeeds)
            down.unlink()
            async with asyncio.timeout(10):
                while (after := await health())["status"] != "healthy":
                    await asyncio.sleep(0.05)

    # Then the service was degraded (not unhealthy: clips flow) naming the VLM, then healthy
    assert during["status"] == "degraded"
    [vlm_health] = [c for c in during["components"] if c["name"] == "vlm"]
    assert not vlm_health["ok"] and "VLM endpoint timed out" in vlm_health["detail"]
    assert "vlm" not in {c["name"] for c in after["components"]}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"X-API-Key": "wrong-key"}, 401),
        ({"Authorization": "Bearer wrong-key"}, 401),
        ({"X-API-Key": "s3cret-key"}, 200),
        ({"Authorization": "Bearer s3cret-key"}, 200),
    ],
)
async def test_diagnostics_need_the_api_key_when_auth_is_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], expected: int
) -> None:
    # Given auth enabled with a key from the environment
    monkeypatch.setenv("HOMESEC_TEST_API_KEY", "s3cret-key")
    config = make_config(
        tmp_path, server={**SERVER, "auth_enabled": True, "api_key_env": "HOMESEC_TEST_API_KEY"}
    )
    async with running_app(config) as app:
        assert app.server is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.server.port}") as client:
            # When diagnostics and the probe are called
            diagnostics = await client.get("/api/v1/diagnostics", headers=headers)
            probe = await client.get("/health")

    # Then only the right key opens diagnostics; the probe never needs one
    assert diagnostics.status_code == expected
    assert probe.status_code == 200
    if expected == 200:
        body = diagnostics.json()
        assert body["state_backend"] == "sqlite"
        assert body["clips_in_flight"] == 0
        assert "s3cret-key" not in diagnostics.text


async def test_health_is_published_to_the_sinks_that_show_it(tmp_path: Path) -> None:
    # Given a sink that publishes health (as the MQTT notifier does for Home Assistant)
    config = make_config(tmp_path, notifiers=[{"backend": "fake_recorder", "config": {}}])

    # When the service runs
    async with running_app(config) as app:
        [sink] = app.components.notifiers
        assert isinstance(sink, tests.fakes.plugins.RecordingNotifier)
        while not sink.health_reports:
            await asyncio.sleep(0.05)

    # Then the sink received a full report
    report = sink.health_reports[0]
    assert report.status == "healthy"
    assert [camera.name for camera in report.cameras] == ["front_door"]
