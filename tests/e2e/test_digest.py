"""The digest in the running service: coming home (the mode set in the API) sends what
happened while away to the MQTT sink that takes digests, retained for Home Assistant."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import tests.fakes.plugins  # noqa: F401
from homesec.models.enums import DigestTrigger
from tests.e2e.test_modes import AUTH, KEY, KEY_ENV, STATE, _config
from tests.fakes.builders import clip_from, make_config
from tests.fakes.running import running_app
from tests.services.mosquitto import MQTTSubscriber, ThrowawayBroker


async def test_coming_home_publishes_the_digest_of_the_time_away(
    tmp_path: Path,
    throwaway_broker: ThrowawayBroker,
    monkeypatch: pytest.MonkeyPatch,
    person_clip: Path,
) -> None:
    # Given HomeSec with modes, a digest on coming home, and an MQTT sink that takes it
    monkeypatch.setenv(KEY_ENV, KEY)
    base = _config(tmp_path, throwaway_broker).model_dump(mode="json")
    base["notifiers"][0]["digest"] = True
    config = make_config(
        tmp_path, **{**base, "digest": {"enabled": True, "at": None, "on_mode": "home"}}
    )
    async with running_app(config) as app:
        assert app.server is not None
        url = f"http://127.0.0.1:{app.server.port}"
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
            # When HomeSec is set away, a person comes to the door, and it is set home
            await client.put("/api/v1/mode", json={"mode": "away"})
            await app.components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
            async with MQTTSubscriber(throwaway_broker, f"{STATE}/digest") as digests:
                await client.put("/api/v1/mode", json={"mode": "home"})
                message = await digests.next(timeout=20)

    # Then the digest tells of the clip and its alert, and says what sent it
    digest = json.loads(message.payload)
    assert digest["trigger"] == DigestTrigger.MODE
    assert (digest["clips"], digest["alerts"]) == (1, 1)
    assert digest["notable"][0]["camera_name"] == "front_door"
