"""The `mqtt` notifier against real Mosquitto brokers, observed through a real subscriber."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import ValidationError

from homesec.interfaces import Notifier
from homesec.models.alert import Alert, SystemAlert
from homesec.models.enums import PluginType
from homesec.plugins.notifiers.mqtt import MQTTNotifier
from homesec.plugins.registry import load_notifier, validate_plugin_config
from tests.plugins.notifiers.helpers import (
    PASSWORD,
    USER,
    MakeMQTTNotifier,
    camera_unhealthy_alert,
    mqtt_config,
    names_the_problem,
    sample_alert,
    stage_failure_alert,
    wait_for_ping,
)
from tests.services.mosquitto import (
    ALERT_CONTRACT_FIELDS as CONTRACT_FIELDS,
)
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber, ThrowawayBroker

MQTT_LOGGER = "homesec.plugins.notifiers.mqtt"


def clip_ids(messages: list[aiomqtt.Message]) -> list[str]:
    return [Alert.model_validate_json(message.payload).clip_id for message in messages]


async def wait_for_log(caplog: pytest.LogCaptureFixture, event_type: str) -> logging.LogRecord:
    async with asyncio.timeout(5.0):
        while True:
            for record in caplog.records:
                if getattr(record, "event_type", None) == event_type:
                    return record
            await asyncio.sleep(0.02)


async def register_session(broker: ThrowawayBroker, topic_filter: str) -> str:
    """A persistent subscriber session, so messages published while it is away are kept."""
    session = f"test-subscriber-{uuid.uuid4().hex[:8]}"
    async with MQTTSubscriber(broker, topic_filter, session=session):
        pass
    return session


def test_registered_as_the_mqtt_notifier() -> None:
    # Given the plugin registry and a minimal config
    raw = {"host": "127.0.0.1"}

    # When the mqtt notifier backend is loaded by name
    notifier = load_notifier("mqtt", raw)

    # Then it is an MQTTNotifier, a Notifier, named after the default sink name
    assert isinstance(notifier, Notifier)
    assert isinstance(notifier, MQTTNotifier)
    assert notifier.name == "mqtt"


async def test_alert_arrives_on_camera_topic_with_exactly_the_contract_fields(
    mqtt_broker: BrokerAddress, mqtt_topic_prefix: str, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a started notifier and a subscriber on the test's topics
    notifier = await make_mqtt_notifier(**mqtt_config(mqtt_broker, mqtt_topic_prefix))
    alert = sample_alert()
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        # When an alert is sent
        await notifier.send(alert)

        # Then it arrives on the camera's topic, QoS 1, not retained, with the contract's fields
        message = await subscriber.next()
    assert str(message.topic) == f"{mqtt_topic_prefix}/alerts/front_door"
    assert message.qos == 1
    assert message.retain is False
    payload = json.loads(message.payload)
    assert set(payload) == CONTRACT_FIELDS
    assert payload["risk_level"] == "high"
    assert payload["dedupe_key"] == alert.clip_id
    assert Alert.model_validate_json(message.payload) == alert


async def test_alert_is_not_retained_for_a_late_subscriber(
    mqtt_broker: BrokerAddress, mqtt_topic_prefix: str, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given an alert that was delivered to a live subscriber
    notifier = await make_mqtt_notifier(**mqtt_config(mqtt_broker, mqtt_topic_prefix))
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        await notifier.send(sample_alert())
        await subscriber.next()

    # When a subscriber arrives afterwards
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as late:
        # Then the broker has nothing retained for it
        await late.expect_silence(0.3)


async def test_alert_without_vlm_or_upload_has_nulls_in_the_payload(
    mqtt_broker: BrokerAddress, mqtt_topic_prefix: str, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given an alert for a clip whose upload failed and that the VLM skipped
    notifier = await make_mqtt_notifier(**mqtt_config(mqtt_broker, mqtt_topic_prefix))
    alert = sample_alert(
        camera="backyard",
        view_url=None,
        storage_uri=None,
        upload_failed=True,
        risk_level=None,
        summary=None,
    )
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        # When it is sent
        await notifier.send(alert)

        # Then the payload says so with nulls and upload_failed=true
        message = await subscriber.next()
    assert str(message.topic) == f"{mqtt_topic_prefix}/alerts/backyard"
    payload = json.loads(message.payload)
    assert payload["risk_level"] is None
    assert payload["view_url"] is None
    assert payload["upload_failed"] is True


async def test_system_alert_arrives_on_the_system_topic(
    mqtt_broker: BrokerAddress, mqtt_topic_prefix: str, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a started notifier and a subscriber
    notifier = await make_mqtt_notifier(**mqtt_config(mqtt_broker, mqtt_topic_prefix))
    alert = stage_failure_alert()
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        # When a system alert is sent
        await notifier.send_system(alert)

        # Then it arrives as SystemAlert JSON on the system topic
        message = await subscriber.next()
    assert str(message.topic) == f"{mqtt_topic_prefix}/system/errors"
    assert message.qos == 1
    assert SystemAlert.model_validate_json(message.payload) == alert


async def test_close_delivers_what_is_queued_while_connected(
    mqtt_broker: BrokerAddress, mqtt_topic_prefix: str, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a connected notifier with alerts just handed to it
    notifier = await make_mqtt_notifier(**mqtt_config(mqtt_broker, mqtt_topic_prefix))
    await wait_for_ping(notifier, True)
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        for n in range(5):
            await notifier.send(sample_alert(n))

        # When it is closed at once
        await notifier.aclose()

        # Then every alert went out before the disconnect, and later sends are refused
        messages = await subscriber.collect(5)
    assert clip_ids(messages) == [sample_alert(n).clip_id for n in range(5)]
    assert notifier.pending == 0
    with pytest.raises(RuntimeError, match="closed"):
        await notifier.send(sample_alert())


async def test_alerts_sent_while_broker_is_down_at_start_are_delivered_in_order(
    throwaway_broker: ThrowawayBroker,
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a broker that is down when the notifier starts
    session = await register_session(throwaway_broker, f"{mqtt_topic_prefix}/#")
    throwaway_broker.stop()
    notifier = await make_mqtt_notifier(**mqtt_config(throwaway_broker, mqtt_topic_prefix))
    outage = await wait_for_log(caplog, "mqtt_unavailable")

    # When alerts are sent during the outage and the broker comes back
    for n in range(3):
        await notifier.send(sample_alert(n))
    assert await notifier.ping() is False
    assert notifier.pending == 3
    throwaway_broker.start()

    # Then all of them arrive, in order
    async with MQTTSubscriber(
        throwaway_broker, f"{mqtt_topic_prefix}/#", session=session
    ) as subscriber:
        messages = await subscriber.collect(3)
    assert clip_ids(messages) == [sample_alert(n).clip_id for n in range(3)]
    assert await notifier.ping() is True
    assert outage.levelno == logging.WARNING


async def test_alerts_sent_during_a_broker_outage_are_delivered_after_it(
    throwaway_broker: ThrowawayBroker,
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a connected notifier whose first alert was delivered
    caplog.set_level(logging.INFO, logger=MQTT_LOGGER)
    topics = f"{mqtt_topic_prefix}/#"
    session = await register_session(throwaway_broker, topics)
    notifier = await make_mqtt_notifier(**mqtt_config(throwaway_broker, mqtt_topic_prefix))
    async with MQTTSubscriber(throwaway_broker, topics, session=session) as subscriber:
        await notifier.send(sample_alert(0))
        await subscriber.next()

        # When the broker goes down, alerts are sent, and the broker comes back
        throwaway_broker.stop()
    await wait_for_ping(notifier, False)
    await notifier.send(sample_alert(1))
    await notifier.send(sample_alert(2))
    throwaway_broker.start()

    # Then the alerts of the outage arrive, in order, and the outage was logged once
    async with MQTTSubscriber(throwaway_broker, topics, session=session) as subscriber:
        messages = await subscriber.collect(2)
    assert clip_ids(messages) == [
        sample_alert(1).clip_id,
        sample_alert(2).clip_id,
    ]
    await wait_for_log(caplog, "mqtt_reconnected")
    outages = [r for r in caplog.records if getattr(r, "event_type", None) == "mqtt_unavailable"]
    assert [r.levelno for r in outages] == [logging.WARNING]


async def test_full_outbox_drops_the_oldest_and_counts_it(
    throwaway_broker: ThrowawayBroker,
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a notifier with room for 3 messages and its broker down
    session = await register_session(throwaway_broker, f"{mqtt_topic_prefix}/#")
    throwaway_broker.stop()
    config = mqtt_config(throwaway_broker, mqtt_topic_prefix)
    notifier = await make_mqtt_notifier(**config, max_pending=3)
    await wait_for_log(caplog, "mqtt_unavailable")

    # When 5 alerts are sent before the broker comes back
    for n in range(5):
        await notifier.send(sample_alert(n))
    throwaway_broker.start()

    # Then the 2 oldest were dropped (counted, logged at ERROR) and the 3 newest arrive
    assert notifier.dropped == 2
    dropped_logs = [
        r for r in caplog.records if getattr(r, "event_type", None) == "mqtt_message_dropped"
    ]
    assert [r.levelno for r in dropped_logs] == [logging.ERROR, logging.ERROR]
    async with MQTTSubscriber(
        throwaway_broker, f"{mqtt_topic_prefix}/#", session=session
    ) as subscriber:
        messages = await subscriber.collect(3)
        await subscriber.expect_silence(0.2)
    assert clip_ids(messages) == [sample_alert(n).clip_id for n in (2, 3, 4)]


async def test_credentials_come_from_the_named_env_vars(
    make_throwaway_broker: Callable[..., ThrowawayBroker],
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    credentials: dict[str, str],
) -> None:
    # Given a broker that requires a password, and the credentials in env vars
    broker = make_throwaway_broker(users={USER: PASSWORD})
    notifier = await make_mqtt_notifier(**mqtt_config(broker, mqtt_topic_prefix, **credentials))
    async with MQTTSubscriber(
        broker, f"{mqtt_topic_prefix}/#", username=USER, password=PASSWORD
    ) as subscriber:
        # When an alert is sent
        await notifier.send(sample_alert())

        # Then the notifier is connected and the alert arrives
        message = await subscriber.next()
    assert str(message.topic) == f"{mqtt_topic_prefix}/alerts/front_door"
    assert await notifier.ping() is True


async def test_wrong_password_is_refused_and_logged_without_the_password(
    make_throwaway_broker: Callable[..., ThrowawayBroker],
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    credentials: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a broker that requires a password, and a wrong one in the env var
    caplog.set_level(logging.DEBUG)
    broker = make_throwaway_broker(users={USER: PASSWORD})
    monkeypatch.setenv(credentials["password_env"], "wrong-battery-17")

    # When the notifier starts and sends an alert
    notifier = await make_mqtt_notifier(**mqtt_config(broker, mqtt_topic_prefix, **credentials))
    async with MQTTSubscriber(
        broker, f"{mqtt_topic_prefix}/#", username=USER, password=PASSWORD
    ) as subscriber:
        await notifier.send(sample_alert())

        # Then the broker refuses it, nothing is published, and the log never shows the password
        record = await wait_for_log(caplog, "mqtt_unavailable")
        await subscriber.expect_silence(0.3)
    assert record.levelno == logging.ERROR
    assert await notifier.ping() is False
    assert notifier.pending == 1
    assert "wrong-battery-17" not in caplog.text


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"hots": "localhost"}, "extra_forbidden"),
        ({"username_env": "HOMESEC_TEST_UNSET_VAR"}, "is not set"),
        ({"topic_template": "homecam/alerts/{camera}"}, "placeholder"),
        ({"topic_template": "homecam/alerts/{camera_name!r}"}, "placeholder"),
        ({"topic_template": "homecam/alerts/{}"}, "placeholder"),
        ({"topic_template": "homecam/{camera_name"}, "invalid topic template"),
        ({"topic_template": "homecam/#/{camera_name}"}, "not a valid MQTT topic"),
        ({"system_topic": "homecam/+/errors"}, "not a valid MQTT topic"),
        ({"qos": 3}, "literal_error"),
        ({"password_env": "PATH"}, "needs username_env"),
        ({"tls_insecure": True}, "need tls"),
        ({"tls": True, "ca_file": "/nonexistent/ca.pem"}, "path_not_file"),
        ({"reconnect_min_s": 10, "reconnect_max_s": 1}, "must not exceed"),
    ],
)
def test_bad_config_is_rejected_at_load(
    override: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a config with one problem
    monkeypatch.delenv("HOMESEC_TEST_UNSET_VAR", raising=False)
    raw = {"host": "127.0.0.1", **override}

    # When it is validated as the mqtt notifier's config
    with pytest.raises(ValidationError) as caught:
        validate_plugin_config(PluginType.NOTIFIER, "mqtt", raw)

    # Then the error names the problem
    assert names_the_problem(caught.value, problem)


async def test_close_does_not_hang_when_the_broker_is_down(
    throwaway_broker: ThrowawayBroker,
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a notifier with queued alerts and no broker
    throwaway_broker.stop()
    notifier = await make_mqtt_notifier(**mqtt_config(throwaway_broker, mqtt_topic_prefix))
    await wait_for_log(caplog, "mqtt_unavailable")
    for n in range(3):
        await notifier.send(sample_alert(n))

    # When it is closed
    async with asyncio.timeout(2.0):
        await notifier.aclose()

    # Then it is closed promptly, keeping count of what was never delivered
    assert await notifier.ping() is False
    assert notifier.pending == 3
    with pytest.raises(RuntimeError, match="closed"):
        await notifier.send_system(camera_unhealthy_alert("after close"))


async def test_close_does_not_hang_when_the_broker_stops_answering(
    throwaway_broker: ThrowawayBroker, mqtt_topic_prefix: str, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given a connected notifier whose broker hangs while alerts wait for their acks
    config = mqtt_config(throwaway_broker, mqtt_topic_prefix)
    notifier = await make_mqtt_notifier(**config, close_timeout_s=0.3)
    await wait_for_ping(notifier, True)
    throwaway_broker.pause()
    for n in range(3):
        await notifier.send(sample_alert(n))

    # When it is closed
    async with asyncio.timeout(3.0):
        await notifier.aclose()

    # Then it gave up after its bounded drain and disconnect times, keeping the alerts counted
    assert await notifier.ping() is False
    assert notifier.pending == 3


async def test_tls_connection_trusts_the_configured_ca_file(
    make_throwaway_broker: Callable[..., ThrowawayBroker],
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
) -> None:
    # Given a TLS broker with a self-signed certificate for localhost, and that CA file
    broker = make_throwaway_broker(tls=True)
    assert broker.ca_file is not None
    config = {**mqtt_config(broker, mqtt_topic_prefix), "host": "localhost"}
    notifier = await make_mqtt_notifier(**config, tls=True, ca_file=str(broker.ca_file))
    trusting = ssl.create_default_context(cafile=broker.ca_file)
    address = BrokerAddress("localhost", broker.port)
    async with MQTTSubscriber(address, f"{mqtt_topic_prefix}/#", tls_context=trusting) as sub:
        # When an alert is sent
        await notifier.send(sample_alert())

        # Then it arrives over TLS
        message = await sub.next()
    assert Alert.model_validate_json(message.payload) == sample_alert()


async def test_tls_refuses_a_certificate_that_does_not_name_the_host(
    make_throwaway_broker: Callable[..., ThrowawayBroker],
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a TLS broker whose certificate names localhost, reached as 127.0.0.1
    broker = make_throwaway_broker(tls=True)
    config = mqtt_config(broker, mqtt_topic_prefix)

    # When the notifier connects with the CA file but without tls_insecure
    notifier = await make_mqtt_notifier(**config, tls=True, ca_file=str(broker.ca_file))

    # Then the connection is refused and logged
    record = await wait_for_log(caplog, "mqtt_unavailable")
    assert "certificate" in record.getMessage().lower()
    assert await notifier.ping() is False


async def test_tls_insecure_accepts_a_certificate_for_another_host(
    make_throwaway_broker: Callable[..., ThrowawayBroker],
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
) -> None:
    # Given a TLS broker whose certificate names localhost, reached as 127.0.0.1
    broker = make_throwaway_broker(tls=True)
    config = mqtt_config(broker, mqtt_topic_prefix)

    # When the notifier connects with tls_insecure
    notifier = await make_mqtt_notifier(
        **config, tls=True, ca_file=str(broker.ca_file), tls_insecure=True
    )

    # Then it connects
    await wait_for_ping(notifier, True)


async def test_a_restart_resends_only_what_the_broker_never_acknowledged(
    throwaway_broker: ThrowawayBroker,
    mqtt_topic_prefix: str,
    make_mqtt_notifier: MakeMQTTNotifier,
    tmp_path: Path,
) -> None:
    # Given a notifier with a work folder: one alert delivered, then the broker goes down and
    # a second alert is queued, and the notifier is closed without delivering it
    config = {**mqtt_config(throwaway_broker, mqtt_topic_prefix), "work_dir": str(tmp_path)}
    first = await make_mqtt_notifier(**config)
    async with MQTTSubscriber(throwaway_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        await first.send(sample_alert(1))
        assert clip_ids([await subscriber.next()]) == ["front_door_1700000001.mp4"]
    session = await register_session(throwaway_broker, f"{mqtt_topic_prefix}/#")
    throwaway_broker.stop()
    await first.send(sample_alert(2))
    await first.aclose()

    # When the broker is back and a new notifier starts on the same work folder
    throwaway_broker.start()
    async with MQTTSubscriber(
        throwaway_broker, f"{mqtt_topic_prefix}/#", session=session
    ) as subscriber:
        await make_mqtt_notifier(**config)
        messages = [await subscriber.next(timeout=10)]
        await subscriber.expect_silence(within=1.0)

    # Then only the undelivered alert goes out, once
    assert clip_ids(messages) == ["front_door_1700000002.mp4"]
