"""Home Assistant MQTT discovery of the `mqtt` notifier, against real Mosquitto brokers.

Each test uses a private broker (retained configs must not pile up on the shared one) and
reads what Home Assistant would read: retained configs, state topics, the last will.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import ValidationError

from homesec.models.alert import Alert, SystemAlert
from homesec.models.enums import HealthStatus, PluginType
from homesec.models.health import CameraHealth, ComponentHealth, HealthReport
from homesec.plugins.notifiers.mqtt import MQTTNotifier
from homesec.plugins.registry import validate_plugin_config
from tests.plugins.notifiers.helpers import (
    MakeMQTTNotifier,
    mqtt_config,
    names_the_problem,
    sample_alert,
    stage_failure_alert,
    wait_for_ping,
    write_jpeg,
)
from tests.services.mosquitto import ALERT_CONTRACT_FIELDS, MQTTSubscriber, ThrowawayBroker

CAMERAS = ["front_door", "backyard"]
CAMERA_ENTITIES = {
    ("event", "alert"),
    ("binary_sensor", "alert_active"),
    ("sensor", "risk_level"),
    ("sensor", "activity"),
    ("sensor", "summary"),
    ("sensor", "last_alert"),
    ("camera", "snapshot"),
    ("binary_sensor", "needs_review"),
}
HOMESEC_ENTITIES = {("binary_sensor", "status"), ("event", "system_alert"), ("sensor", "health")}
CONFIG_COUNT = len(HOMESEC_ENTITIES) + len(CAMERAS) * len(CAMERA_ENTITIES)


class Topics:
    """Where a test's notifier announces and keeps state (unique per test)."""

    def __init__(self) -> None:
        self.root = f"homesec-test/{uuid.uuid4().hex}"
        self.alerts = f"{self.root}/alerts"
        self.system = f"{self.root}/system"
        self.discovery = f"{self.root}/homeassistant"
        self.state = f"{self.root}/ha"

    def config(self, broker: ThrowawayBroker, cameras: list[str], **extra: Any) -> dict[str, Any]:
        discovery = {
            "system_topic": self.system,
            "discovery": True,
            "discovery_prefix": self.discovery,
            "state_topic_prefix": self.state,
            "camera_names": cameras,
        }
        return mqtt_config(broker, self.root, **(discovery | extra))


def payload_bytes(message: aiomqtt.Message) -> bytes:
    assert isinstance(message.payload, bytes)
    return message.payload


async def read_until(
    subscriber: MQTTSubscriber, topic: str, payload: bytes | None = None, timeout: float = 5.0
) -> list[aiomqtt.Message]:
    """Every message up to and including the first on `topic` (with `payload`, if given)."""
    seen: list[aiomqtt.Message] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await subscriber.next(timeout)
            seen.append(message)
            if str(message.topic) == topic and payload in (None, payload_bytes(message)):
                return seen


@pytest.fixture
def topics() -> Topics:
    return Topics()


async def started(
    make_notifier: MakeMQTTNotifier, broker: ThrowawayBroker, topics: Topics, **extra: Any
) -> MQTTNotifier:
    """A notifier whose announcement and initial states are on the broker."""
    cameras = extra.pop("cameras", CAMERAS)
    async with MQTTSubscriber(broker, f"{topics.state}/#") as subscriber:
        notifier = await make_notifier(**topics.config(broker, cameras, **extra))
        for camera in cameras:
            await read_until(subscriber, f"{topics.state}/{camera}/active", b"OFF")
    return notifier


async def retained_configs(broker: ThrowawayBroker, topics: Topics) -> dict[str, dict[str, Any]]:
    """What Home Assistant finds when it subscribes to the discovery prefix: topic -> config."""
    async with MQTTSubscriber(broker, f"{topics.discovery}/#") as late:
        messages = await late.collect(CONFIG_COUNT)
        await late.expect_silence(0.3)
    assert all(message.retain for message in messages)
    return {str(m.topic): json.loads(payload_bytes(m)) for m in messages if payload_bytes(m)}


async def test_discovery_configs_are_retained_with_what_home_assistant_needs(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier with discovery on for two cameras
    await started(make_mqtt_notifier, throwaway_broker, topics)

    # When Home Assistant subscribes to the discovery prefix afterwards
    configs = await retained_configs(throwaway_broker, topics)

    # Then one retained config per entity sits on {prefix}/{component}/homesec/{object}/config
    expected = {
        (component, f"{camera}_{key}") for camera in CAMERAS for component, key in CAMERA_ENTITIES
    } | HOMESEC_ENTITIES
    found = set()
    for topic, config in configs.items():
        prefix, component, node_id, object_id, leaf = topic.rsplit("/", 4)
        assert (prefix, node_id, leaf) == (topics.discovery, "homesec", "config")
        found.add((component, object_id))
        # ... each with a stable unique_id, a device, and a topic to read its state from
        assert config["unique_id"] == f"homesec_{object_id}"
        assert config["device"]["identifiers"]
        assert config.get("state_topic") or config.get("topic")
    assert found == expected
    assert len({config["unique_id"] for config in configs.values()}) == CONFIG_COUNT


async def test_camera_entities_belong_to_the_camera_device_and_follow_availability(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier with discovery on
    await started(make_mqtt_notifier, throwaway_broker, topics)

    # When the configs of the front door's entities are read back
    configs = await retained_configs(throwaway_broker, topics)
    front_door = {
        topic.split("/")[-2]: config for topic, config in configs.items() if "/front_door_" in topic
    }

    # Then they share the camera's device (linked to HomeSec's) and its availability topic
    assert len(front_door) == len(CAMERA_ENTITIES)
    status_topic = f"{topics.state}/status"
    for config in front_door.values():
        assert config["device"]["identifiers"] == ["homesec_front_door"]
        assert config["device"]["via_device"] == "homesec"
        assert config["availability_topic"] == status_topic
        assert (config["payload_available"], config["payload_not_available"]) == (
            "online",
            "offline",
        )
    assert front_door["front_door_alert"]["event_types"] == ["alert"]
    assert front_door["front_door_alert"]["state_topic"] == f"{topics.state}/front_door/event"
    assert front_door["front_door_snapshot"]["topic"] == f"{topics.state}/front_door/snapshot"
    assert front_door["front_door_alert_active"]["off_delay"] == 60
    status = configs[f"{topics.discovery}/binary_sensor/homesec/status/config"]
    assert status["state_topic"] == status_topic
    assert status["device"]["identifiers"] == ["homesec"]
    assert "availability_topic" not in status


async def test_alert_fires_the_event_and_updates_state_and_snapshot(
    throwaway_broker: ThrowawayBroker,
    topics: Topics,
    make_mqtt_notifier: MakeMQTTNotifier,
    snapshot: Path,
) -> None:
    # Given a notifier with discovery on, and a snapshot of the best detection
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    alert = sample_alert()
    async with (
        MQTTSubscriber(throwaway_broker, f"{topics.state}/front_door/#") as state,
        MQTTSubscriber(throwaway_broker, f"{topics.alerts}/#") as contract,
    ):
        await read_until(state, f"{topics.state}/front_door/active", b"OFF")

        # When an alert with the snapshot is sent
        await notifier.send(alert, snapshot)

        # Then the snapshot, the last alert, "active" and the event arrive, the event last
        messages = await read_until(state, f"{topics.state}/front_door/event")
        contract_message = await contract.next()
    by_leaf = {str(m.topic).rsplit("/", 1)[1]: payload_bytes(m) for m in messages}
    assert list(by_leaf) == ["snapshot", "alert", "active", "event"]
    assert by_leaf["snapshot"] == snapshot.read_bytes()
    assert Alert.model_validate_json(by_leaf["alert"]) == alert
    assert by_leaf["active"] == b"ON"
    event = json.loads(by_leaf["event"])
    assert event["event_type"] == "alert"
    assert set(event) == ALERT_CONTRACT_FIELDS | {"event_type"}
    assert event["clip_id"] == alert.clip_id
    # ... and the contract's alert topic and payload are unchanged
    assert str(contract_message.topic) == f"{topics.alerts}/front_door"
    assert set(json.loads(payload_bytes(contract_message))) == ALERT_CONTRACT_FIELDS


async def test_state_and_snapshot_are_retained_and_the_event_is_not(
    throwaway_broker: ThrowawayBroker,
    topics: Topics,
    make_mqtt_notifier: MakeMQTTNotifier,
    snapshot: Path,
) -> None:
    # Given an alert with a snapshot that was delivered
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    async with MQTTSubscriber(throwaway_broker, f"{topics.state}/front_door/#") as live:
        await notifier.send(sample_alert(), snapshot)
        await read_until(live, f"{topics.state}/front_door/event")

    # When Home Assistant (re)subscribes later
    async with MQTTSubscriber(throwaway_broker, f"{topics.state}/front_door/#") as late:
        messages = await late.collect(3)
        await late.expect_silence(0.3)

    # Then the snapshot, last alert and "active" are there, but no stale event fires again
    leaves = {str(m.topic).rsplit("/", 1)[1] for m in messages}
    assert leaves == {"snapshot", "alert", "active"}
    assert all(m.retain for m in messages)


@pytest.mark.slow
async def test_alert_active_turns_off_after_alert_active_s(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier whose "Alert active" lasts one second
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics, alert_active_s=1)
    active = f"{topics.state}/front_door/active"
    async with MQTTSubscriber(throwaway_broker, active) as subscriber:
        await read_until(subscriber, active, b"OFF")

        # When an alert is sent
        loop = asyncio.get_running_loop()
        await notifier.send(sample_alert())
        await read_until(subscriber, active, b"ON")
        switched_on = loop.time()

        # Then it turns off again by itself, about a second later
        await read_until(subscriber, active, b"OFF", timeout=3.0)
    assert 0.8 <= loop.time() - switched_on <= 2.0


async def test_alerts_during_an_outage_keep_only_the_latest_snapshot(
    throwaway_broker: ThrowawayBroker,
    topics: Topics,
    make_mqtt_notifier: MakeMQTTNotifier,
    tmp_path: Path,
) -> None:
    # Given a connected notifier whose broker then goes down
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    throwaway_broker.stop()
    await wait_for_ping(notifier, False)

    # When two alerts with different snapshots are sent before the broker is back
    first, second = write_jpeg(tmp_path / "1.jpg", 10), write_jpeg(tmp_path / "2.jpg", 200)
    await notifier.send(sample_alert(1), first)
    await notifier.send(sample_alert(2), second)

    # Then both alerts and both events wait, but only the latest snapshot, state and "active"
    assert notifier.pending == 2 + 2 + 3
    throwaway_broker.start()
    while notifier.pending:
        await asyncio.sleep(0.02)
    async with MQTTSubscriber(throwaway_broker, f"{topics.state}/front_door/#") as late:
        messages = await late.collect(3)
    by_leaf = {str(m.topic).rsplit("/", 1)[1]: payload_bytes(m) for m in messages}
    assert by_leaf["snapshot"] == second.read_bytes()
    assert Alert.model_validate_json(by_leaf["alert"]) == sample_alert(2)


async def test_unreadable_snapshot_still_sends_the_alert(
    throwaway_broker: ThrowawayBroker,
    topics: Topics,
    make_mqtt_notifier: MakeMQTTNotifier,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a notifier with discovery on and a snapshot path that does not exist
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    async with MQTTSubscriber(throwaway_broker, f"{topics.state}/front_door/#") as subscriber:
        await read_until(subscriber, f"{topics.state}/front_door/active", b"OFF")

        # When an alert is sent with it
        await notifier.send(sample_alert(), tmp_path / "missing.jpg")

        # Then the state and event go out without an image, and the problem is logged
        messages = await read_until(subscriber, f"{topics.state}/front_door/event")
    assert [str(m.topic).rsplit("/", 1)[1] for m in messages] == ["alert", "active", "event"]
    assert any(getattr(r, "event_type", None) == "snapshot_unreadable" for r in caplog.records)


async def test_availability_is_online_while_connected_and_offline_after_close(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a started notifier, seen online
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    status = f"{topics.state}/status"
    async with MQTTSubscriber(throwaway_broker, status) as subscriber:
        online = await subscriber.next()

        # When it is closed cleanly
        await notifier.aclose()

        # Then it said offline itself (the broker drops the will on a clean disconnect)
        offline = await subscriber.next()
    assert (payload_bytes(online), online.retain) == (b"online", True)
    assert payload_bytes(offline) == b"offline"
    async with MQTTSubscriber(throwaway_broker, status) as late:
        assert payload_bytes(await late.next()) == b"offline"


_NOTIFIER_PROCESS = """
import asyncio, json, sys
from homesec.plugins.registry import load_notifier

async def main() -> None:
    notifier = load_notifier("mqtt", json.loads(sys.argv[1]))
    await notifier.start()
    while not await notifier.ping():
        await asyncio.sleep(0.02)
    print("connected", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_last_will_says_offline_when_the_process_is_killed(
    throwaway_broker: ThrowawayBroker, topics: Topics
) -> None:
    # Given a notifier with discovery on, running in another process and seen online
    status = f"{topics.state}/status"
    config = json.dumps(topics.config(throwaway_broker, CAMERAS))
    async with MQTTSubscriber(throwaway_broker, status) as subscriber:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _NOTIFIER_PROCESS, config, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            assert line.strip() == b"connected"
            await read_until(subscriber, status, b"online", timeout=10)

            # When the process is killed (SIGKILL: no clean disconnect)
            process.kill()
            await process.wait()

            # Then the broker publishes its last will: offline
            message = await subscriber.next(timeout=5)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert payload_bytes(message) == b"offline"


async def test_home_assistant_restart_makes_it_announce_again(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier that announced itself
    await started(make_mqtt_notifier, throwaway_broker, topics)
    async with MQTTSubscriber(throwaway_broker, f"{topics.discovery}/+/homesec/#") as subscriber:
        await subscriber.collect(CONFIG_COUNT)

        # When Home Assistant publishes its birth message
        async with aiomqtt.Client(throwaway_broker.host, throwaway_broker.port) as home_assistant:
            await home_assistant.publish(f"{topics.discovery}/status", "online", qos=1)

        # Then every config is published again
        again = await subscriber.collect(CONFIG_COUNT)
    assert len({str(m.topic) for m in again}) == CONFIG_COUNT


async def test_a_garbled_birth_message_does_not_break_the_connection(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given bytes that are not UTF-8 retained on Home Assistant's birth topic (anyone who
    # may publish to the broker can leave them there; the broker hands them out on connect)
    birth = f"{topics.discovery}/status"
    async with aiomqtt.Client(throwaway_broker.host, throwaway_broker.port) as someone:
        await someone.publish(birth, b"\xff\xfe", qos=1, retain=True)

    # When HomeSec starts, then Home Assistant restarts, and an alert is sent
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    async with (
        MQTTSubscriber(throwaway_broker, f"{topics.discovery}/+/homesec/#") as configs,
        MQTTSubscriber(throwaway_broker, f"{topics.alerts}/#") as alerts,
    ):
        await configs.collect(CONFIG_COUNT)
        async with aiomqtt.Client(throwaway_broker.host, throwaway_broker.port) as home_assistant:
            await home_assistant.publish(birth, "online", qos=1)
        again = await configs.collect(CONFIG_COUNT)
        await notifier.send(sample_alert())

        # Then the connection still takes messages (it announces again) and sends the alert
        delivered = await alerts.next()
    assert len({str(m.topic) for m in again}) == CONFIG_COUNT
    assert Alert.model_validate_json(payload_bytes(delivered)) == sample_alert()


async def test_configs_of_a_removed_camera_are_deleted(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given HomeSec announced two cameras
    first = await started(make_mqtt_notifier, throwaway_broker, topics)
    await first.aclose()

    # When it is restarted with only one of them
    async with MQTTSubscriber(throwaway_broker, f"{topics.discovery}/#") as watcher:
        await make_mqtt_notifier(**topics.config(throwaway_broker, ["front_door"]))
        deleted: set[str] = set()
        while len(deleted) < len(CAMERA_ENTITIES):
            message = await watcher.next()
            if not payload_bytes(message):
                deleted.add(str(message.topic))

    # Then the removed camera's configs are deleted (an empty retained config removes an
    # entity), and Home Assistant finds only the remaining ones
    assert all("/backyard_" in topic for topic in deleted)
    async with MQTTSubscriber(throwaway_broker, f"{topics.discovery}/#") as late:
        messages = await late.collect(len(HOMESEC_ENTITIES) + len(CAMERA_ENTITIES))
        await late.expect_silence(0.3)
    assert not any("/backyard_" in str(m.topic) for m in messages)


async def test_health_report_feeds_the_health_entity(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier with discovery on
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    report = HealthReport(
        status=HealthStatus.DEGRADED,
        version="0.1.0",
        uptime_s=12.5,
        components=[ComponentHealth(name="database", ok=False)],
        cameras=[CameraHealth(name="front_door", healthy=True, last_heartbeat=1.0)],
    )
    async with MQTTSubscriber(throwaway_broker, f"{topics.state}/health") as subscriber:
        # When a health report is published
        await notifier.publish_health(report)

        # Then the Health entity's retained state topic holds it
        message = await subscriber.next()
    assert json.loads(payload_bytes(message))["status"] == "degraded"
    configs = await retained_configs(throwaway_broker, topics)
    health = configs[f"{topics.discovery}/sensor/homesec/health/config"]
    assert health["state_topic"] == str(message.topic)


async def test_system_alert_fires_the_homesec_system_alert_event(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier with discovery on
    notifier = await started(make_mqtt_notifier, throwaway_broker, topics)
    alert = stage_failure_alert()
    async with (
        MQTTSubscriber(throwaway_broker, f"{topics.state}/system_alert") as event,
        MQTTSubscriber(throwaway_broker, topics.system) as contract,
    ):
        # When a system alert is sent
        await notifier.send_system(alert)

        # Then the System alert event fires with the alert as attributes, next to the contract
        fired = json.loads(payload_bytes(await event.next()))
        assert SystemAlert.model_validate_json(payload_bytes(await contract.next())) == alert
    assert fired.pop("event_type") == "system_alert"
    assert SystemAlert.model_validate(fired) == alert


async def test_without_discovery_nothing_is_announced(
    throwaway_broker: ThrowawayBroker, topics: Topics, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a notifier with discovery off (the default)
    config = topics.config(throwaway_broker, CAMERAS, discovery=False)
    async with MQTTSubscriber(throwaway_broker, "#") as everything:
        notifier = await make_mqtt_notifier(**config)

        # When an alert is sent
        await notifier.send(sample_alert())

        # Then only the contract's alert goes out
        message = await everything.next()
        await everything.expect_silence(0.3)
    assert str(message.topic) == f"{topics.alerts}/front_door"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"discovery_prefix": "homeassistant/#"}, "must not contain"),
        ({"state_topic_prefix": "homecam/ha/"}, "trailing"),
        ({"node_id": "home sec"}, "string_pattern_mismatch"),
        ({"alert_active_s": 0}, "greater_than_equal"),
        ({"discovery": "sometimes"}, "bool_parsing"),
    ],
)
def test_bad_discovery_config_is_rejected_at_load(override: dict[str, Any], problem: str) -> None:
    # Given an mqtt config with one discovery problem
    raw = {"host": "127.0.0.1", "discovery": True, **override}

    # When it is validated
    with pytest.raises(ValidationError) as caught:
        validate_plugin_config(PluginType.NOTIFIER, "mqtt", raw)

    # Then the error names the problem
    assert names_the_problem(caught.value, problem)
