"""Modes in the running service: set through Home Assistant's discovered select and switch,
the MQTT command topics, the API (with its key) and the UI; shown back on MQTT; kept across a
restart. And the Needs review sensor, from a clip the VLM asks about to its review mark."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

import tests.fakes.plugins  # noqa: F401
from homesec.app import HomeSecApp
from homesec.models.enums import ModeSetter
from homesec.models.modes import ModeState
from tests.fakes.builders import clip_from, make_config
from tests.fakes.plugins import FakeVLM
from tests.fakes.running import running_app
from tests.plugins.notifiers.helpers import mqtt_config
from tests.services.mosquitto import MQTTSubscriber, ThrowawayBroker

KEY_ENV = "HOMESEC_TEST_MODES_KEY"
KEY = "modes-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
DISCOVERY = "ha-test"
STATE = "homesec-test/ha"
CAMERAS = ["front_door", "backyard"]


def _config(tmp_path: Path, broker: ThrowawayBroker, **vlm: Any) -> Any:
    cameras = [
        {
            "name": name,
            "source": {"backend": "local_folder", "config": {"watch_dir": str(tmp_path / name)}},
        }
        for name in CAMERAS
    ]
    mqtt = mqtt_config(
        broker,
        "homesec-test",
        discovery=True,
        discovery_prefix=DISCOVERY,
        state_topic_prefix=STATE,
    )
    return make_config(
        tmp_path,
        cameras=cameras,
        modes={"names": ["home", "away", "night"]},
        vlm={"backend": "fake_vlm", "run_mode": "trigger_only", "config": vlm},
        notifiers=[{"backend": "mqtt", "config": mqtt}],
        server={"enabled": True, "port": 0, "auth_enabled": True, "api_key_env": KEY_ENV},
    )


@asynccontextmanager
async def _service(
    tmp_path: Path, broker: ThrowawayBroker, monkeypatch: pytest.MonkeyPatch, **vlm: Any
) -> AsyncIterator[tuple[HomeSecApp, httpx.AsyncClient]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    async with running_app(_config(tmp_path, broker, **vlm)) as app:
        assert app.server is not None
        base = f"http://127.0.0.1:{app.server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield app, client


async def _retained(broker: ThrowawayBroker, topic: str) -> bytes:
    """The retained payload on `topic` (waiting for it to be published)."""
    async with MQTTSubscriber(broker, topic) as subscriber:
        message = await subscriber.next(timeout=10)
    assert message.retain and isinstance(message.payload, bytes)
    return message.payload


async def _shown(broker: ThrowawayBroker, topic: str, payload: bytes) -> None:
    """Wait until `payload` is what `topic` shows (retained or just published)."""
    async with MQTTSubscriber(broker, topic) as subscriber:
        async with asyncio.timeout(10):
            while (await subscriber.next(timeout=10)).payload != payload:
                pass


async def _publish(broker: ThrowawayBroker, topic: str, payload: str, retain: bool = False) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def _mode(app: HomeSecApp, expected: str) -> ModeState:
    assert app.components.modes is not None
    async with asyncio.timeout(10):
        while app.components.modes.state.mode != expected:
            await asyncio.sleep(0.02)
    return app.components.modes.state


async def test_home_assistant_sets_the_mode_and_a_switch_through_the_discovered_entities(
    tmp_path: Path, throwaway_broker: ThrowawayBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given HomeSec running with modes and Home Assistant discovery
    async with _service(tmp_path, throwaway_broker, monkeypatch) as (app, client):
        select = json.loads(
            await _retained(throwaway_broker, f"{DISCOVERY}/select/homesec/mode/config")
        )
        switch = json.loads(
            await _retained(throwaway_broker, f"{DISCOVERY}/switch/homesec/backyard_alerts/config")
        )

        # When Home Assistant picks `away` in the select and turns the backyard's switch off
        await _shown(throwaway_broker, select["state_topic"], b"home")
        await _publish(throwaway_broker, select["command_topic"], "away")
        state = await _mode(app, "away")
        await _publish(throwaway_broker, switch["command_topic"], switch["payload_off"])
        await _shown(throwaway_broker, switch["state_topic"], b"OFF")
        shown = await client.get("/api/v1/mode", headers=AUTH)

    # Then the select offers the configured modes, the mode is away (set over MQTT), the
    # backyard's alerts are off, and the select's state topic shows it
    assert select["options"] == ["home", "away", "night"]
    assert select["device"]["identifiers"] == ["homesec"]
    assert switch["device"]["identifiers"] == ["homesec_backyard"]
    assert state.set_by == ModeSetter.MQTT
    assert await _retained(throwaway_broker, select["state_topic"]) == b"away"
    assert shown.status_code == 200, shown.text
    assert shown.json()["mode"] == "away"
    assert shown.json()["cameras"] == [
        {"name": "front_door", "alerts_on": True},
        {"name": "backyard", "alerts_on": False},
    ]


async def test_the_api_and_the_ui_set_the_mode_with_the_key_and_a_restart_keeps_it(
    tmp_path: Path, throwaway_broker: ThrowawayBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given HomeSec running with modes and its API key on
    async with _service(tmp_path, throwaway_broker, monkeypatch) as (_, client):
        # When the API is asked without the key, with an unknown mode, then with `night`;
        # and the UI's form sets the front door's switch off
        refused = await client.put("/api/v1/mode", json={"mode": "night"})
        unknown = await client.put("/api/v1/mode", json={"mode": "holiday"}, headers=AUTH)
        night = await client.put("/api/v1/mode", json={"mode": "night"}, headers=AUTH)
        await _shown(throwaway_broker, f"{STATE}/mode", b"night")
        form = await client.post(
            "/ui/cameras/front_door/alerts", data={"on": "false"}, headers=AUTH
        )
        page = await client.get("/ui/", headers=AUTH)

    # ... and HomeSec restarts
    async with _service(tmp_path, throwaway_broker, monkeypatch) as (_, client):
        after = await client.get("/api/v1/mode", headers=AUTH)

    # Then without the key nothing changes (401), an unknown mode is a 400 naming the
    # modes, `night` is taken and shown on MQTT, the UI shows the mode and the switch, and
    # the restart finds both as they were left
    assert refused.status_code == 401
    assert unknown.status_code == 400 and "home, away, night" in unknown.text
    assert night.status_code == 200 and night.json()["set_by"] == ModeSetter.API
    assert form.status_code == 303
    assert '<option value="night" selected>' in page.text
    assert "front_door: alerts off" in page.text
    assert after.json()["mode"] == "night" and after.json()["set_by"] == ModeSetter.API
    assert after.json()["cameras"][0] == {"name": "front_door", "alerts_on": False}


async def test_retained_unknown_and_garbled_commands_change_nothing(
    tmp_path: Path, throwaway_broker: ThrowawayBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a retained `away` command left on the broker (by some other tool) before HomeSec
    # starts: the broker hands it to HomeSec on every connect
    await _publish(throwaway_broker, f"{STATE}/mode/set", "away", retain=True)

    # When HomeSec starts, and an unknown mode and a garbled switch command are published
    async with _service(tmp_path, throwaway_broker, monkeypatch) as (app, _):
        async with MQTTSubscriber(throwaway_broker, f"{STATE}/mode") as shown:
            assert (await shown.next(timeout=10)).payload == b"home"
            await _publish(throwaway_broker, f"{STATE}/mode/set", "holiday")
            await _publish(throwaway_broker, f"{STATE}/backyard/alerts/set", "maybe")

            # Then the mode stays home (shown again after the unknown one, so a select that
            # sent it shows the truth) and the backyard's switch stays on
            assert (await shown.next(timeout=10)).payload == b"home"
        assert app.components.modes is not None
        assert app.components.modes.state.mode == "home"
        assert app.components.modes.state.alerts_off == []


async def test_needs_review_turns_on_for_a_clip_the_vlm_asks_about_and_off_once_reviewed(
    tmp_path: Path,
    throwaway_broker: ThrowawayBroker,
    monkeypatch: pytest.MonkeyPatch,
    person_clip: Path,
) -> None:
    # Given HomeSec whose VLM asks for a review of every clip it sees
    async with _service(tmp_path, throwaway_broker, monkeypatch, requires_review=True) as (
        app,
        client,
    ):
        sensor = json.loads(
            await _retained(
                throwaway_broker,
                f"{DISCOVERY}/binary_sensor/homesec/front_door_needs_review/config",
            )
        )
        topic = sensor["state_topic"]
        await _shown(throwaway_broker, topic, b'{"waiting": 0}')

        # When a clip of the front door is processed, and then marked reviewed in the API
        state = await app.components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
        await _shown(throwaway_broker, topic, b'{"waiting": 1}')
        marked = await client.post(f"/api/v1/clips/{state.clip_id}/reviewed", headers=AUTH)

        # Then the sensor's topic counts the clip while it waits, and none once it is marked
        await _shown(throwaway_broker, topic, b'{"waiting": 0}')
    assert marked.status_code == 200, marked.text
    assert sensor["json_attributes_topic"] == topic
    assert sensor["device"]["identifiers"] == ["homesec_front_door"]


async def test_needs_review_turns_off_when_a_clip_analysed_again_no_longer_asks(
    tmp_path: Path,
    throwaway_broker: ThrowawayBroker,
    monkeypatch: pytest.MonkeyPatch,
    person_clip: Path,
) -> None:
    # Given a clip the VLM asked a person to review, counted on the Needs review sensor
    async with _service(tmp_path, throwaway_broker, monkeypatch, requires_review=True) as (
        app,
        client,
    ):
        topic = f"{STATE}/front_door/needs_review"
        state = await app.components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
        await _shown(throwaway_broker, topic, b'{"waiting": 1}')

        # When the VLM no longer asks (a better prompt, say) and the clip is analysed again
        vlm = app.components.analyzer
        assert isinstance(vlm, FakeVLM)
        vlm.config = vlm.config.model_copy(update={"requires_review": False})
        asked = await client.post(f"/api/v1/clips/{state.clip_id}/reanalyse", headers=AUTH)

        # Then the sensor counts no clip waiting
        await _shown(throwaway_broker, topic, b'{"waiting": 0}')
    assert asked.status_code == 202, asked.text
    assert len(vlm.calls) == 2


async def test_a_command_on_a_huge_topic_is_refused_in_a_short_log_line(
    tmp_path: Path,
    throwaway_broker: ThrowawayBroker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given HomeSec running with modes
    async with _service(tmp_path, throwaway_broker, monkeypatch) as (app, _):
        async with MQTTSubscriber(throwaway_broker, f"{STATE}/mode") as shown:
            await shown.next(timeout=10)

            # When a switch command comes for a camera named by 60,000 characters
            await _publish(throwaway_broker, f"{STATE}/{'x' * 60_000}/alerts/set", "OFF")

            # Then it is refused (the state is shown again) and logged in a short line
            assert (await shown.next(timeout=10)).payload == b"home"
        assert app.components.modes is not None
        assert app.components.modes.state.alerts_off == []
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and all(len(line) < 500 for line in refused)
