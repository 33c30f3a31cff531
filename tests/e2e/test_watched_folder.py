"""A clip dropped into a watched folder, all the way to Postgres and a real MQTT subscriber."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tests.fakes.plugins  # noqa: F401
from homesec.models.alert import Alert
from homesec.models.enums import ClipStatus, EventType, RiskLevel
from homesec.models.state import ClipStateData
from tests.e2e.helpers import clip_rows, drop_clip, wait_for_state
from tests.fakes.builders import config_dict, make_config
from tests.fakes.running import running_app
from tests.services.mosquitto import ALERT_CONTRACT_FIELDS, BrokerAddress, MQTTSubscriber


def _mqtt(broker: BrokerAddress, prefix: str) -> dict[str, object]:
    return {
        "backend": "mqtt",
        "config": {
            "host": broker.host,
            "port": broker.port,
            "topic_template": prefix + "/alerts/{camera_name}",
            "system_topic": f"{prefix}/system/errors",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
    }


@pytest.fixture
def postgres_env(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOMESEC_TEST_DSN", postgres_dsn)
    return postgres_dsn


async def test_dropped_clip_produces_the_mqtt_alert_and_postgres_rows(
    tmp_path: Path,
    person_clip: Path,
    postgres_env: str,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given the service with a watched folder, Postgres state and the MQTT notifier
    config = make_config(
        tmp_path,
        state_store={"dsn_env": "HOMESEC_TEST_DSN"},
        notifiers=[_mqtt(mqtt_broker, mqtt_topic_prefix)],
    )
    watch_dir = Path(config_dict(tmp_path)["cameras"][0]["source"]["config"]["watch_dir"])
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/alerts/#") as subscriber,
        running_app(config),
    ):
        # When a camera drops a clip into the folder
        drop_clip(person_clip, watch_dir, "front_door_1700000000.mp4")

        # Then a subscriber receives exactly the contract's payload on the camera's topic
        message = await subscriber.next(timeout=20)
        state = await wait_for_state(postgres_env, "front_door_1700000000.mp4")

    assert str(message.topic) == f"{mqtt_topic_prefix}/alerts/front_door"
    assert message.qos == 1 and message.retain is False
    payload = json.loads(message.payload)
    assert set(payload) == ALERT_CONTRACT_FIELDS
    alert = Alert.model_validate(payload)
    assert alert.risk_level == RiskLevel.HIGH and payload["risk_level"] == "high"
    assert alert.dedupe_key == alert.clip_id == "front_door_1700000000.mp4"
    assert alert.upload_failed is False and alert.view_url is not None
    assert Path(alert.view_url.removeprefix("file://")).is_file()

    # And the clip_states row validates as ClipStateData, with the lifecycle in clip_events
    raw, events = await clip_rows(postgres_env, "front_door_1700000000.mp4")
    assert raw is not None
    assert ClipStateData.model_validate(raw).status == ClipStatus.DONE == state.status
    kinds = [event["event_type"] for event in events]
    assert kinds[0] == EventType.CLIP_RECEIVED and kinds[-1] == EventType.CLIP_DONE
    assert EventType.ALERT_DECIDED in kinds
    # And the local clip is still there (retention had no reason to prune)
    assert (watch_dir / "front_door_1700000000.mp4").is_file()


async def test_failed_upload_alert_says_so_over_mqtt(
    tmp_path: Path, person_clip: Path, mqtt_broker: BrokerAddress, mqtt_topic_prefix: str
) -> None:
    # Given the service with a storage backend that is down
    config = make_config(
        tmp_path,
        storage={"backend": "fake_failing_storage", "config": {}},
        notifiers=[_mqtt(mqtt_broker, mqtt_topic_prefix)],
    )
    watch_dir = Path(config_dict(tmp_path)["cameras"][0]["source"]["config"]["watch_dir"])
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber,
        running_app(config),
    ):
        # When a clip arrives
        drop_clip(person_clip, watch_dir, "front_door_1700000001.mp4")

        # Then the system alert for the exhausted upload and the clip alert both arrive
        messages = await subscriber.collect(2, timeout=20)

    by_topic = {str(m.topic): json.loads(m.payload) for m in messages}
    alert = Alert.model_validate(by_topic[f"{mqtt_topic_prefix}/alerts/front_door"])
    assert alert.upload_failed is True and alert.view_url is None and alert.storage_uri is None
    system = by_topic[f"{mqtt_topic_prefix}/system/errors"]
    assert system["stage"] == "upload" and system["clip_id"] == "front_door_1700000001.mp4"
    # And the clip was not deleted: it waits locally for a later upload
    assert (watch_dir / "front_door_1700000001.mp4").is_file()


async def test_corrupt_and_empty_clips_end_as_filter_errors_and_the_service_goes_on(
    tmp_path: Path, person_clip: Path, postgres_env: str
) -> None:
    # Given the running service
    config = make_config(tmp_path, state_store={"dsn_env": "HOMESEC_TEST_DSN"})
    watch_dir = Path(config_dict(tmp_path)["cameras"][0]["source"]["config"]["watch_dir"])
    async with running_app(config):
        # When a corrupt clip arrives, then a good one
        watch_dir.mkdir(parents=True, exist_ok=True)
        (watch_dir / "front_door_1700000002.mp4").write_bytes(b"\x00\x01 not a video" * 500)
        corrupt = await wait_for_state(postgres_env, "front_door_1700000002.mp4", ClipStatus.ERROR)
        drop_clip(person_clip, watch_dir, "front_door_1700000003.mp4")
        good = await wait_for_state(postgres_env, "front_door_1700000003.mp4")

    # Then the corrupt one is a recorded filter error and the next clip is processed normally
    filter_log = corrupt.stages["filter"]  # type: ignore[index]
    assert filter_log.status == "error" and "not a video file" in (filter_log.last_error or "")
    assert good.status == ClipStatus.DONE
