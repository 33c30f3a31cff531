"""Alerts in seconds: the detection event first, the VLM's alert after, one dedupe_key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tests.fakes.plugins  # noqa: F401
from homesec.models.alert import Alert, DetectionEvent
from tests.fakes.builders import clip_from
from tests.pipeline.conftest import BuildPipeline, mqtt_sink
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber
from tests.services.smtp_server import SMTPServer


@pytest.mark.slow
async def test_detection_event_comes_before_the_final_alert_with_the_same_dedupe_key(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given a detector that sees a person, a VLM that takes a while, and the MQTT sink
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber,
        build_pipeline(
            filter={"backend": "fake_filter", "config": {"box": [800, 300, 1000, 800]}},
            vlm={"backend": "fake_vlm", "run_mode": "trigger_only", "config": {"delay_s": 0.5}},
            notifiers=[mqtt_sink(mqtt_broker, mqtt_topic_prefix)],
        ) as components,
    ):
        # When a clip is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the detection event arrives first, then the alert, sharing the dedupe_key
        first, second = await subscriber.collect(2, timeout=10)

    assert str(first.topic) == f"{mqtt_topic_prefix}/detections/front_door"
    assert str(second.topic) == f"{mqtt_topic_prefix}/alerts/front_door"
    assert first.qos == 1 and first.retain is False
    detection = DetectionEvent.model_validate_json(first.payload)
    alert = Alert.model_validate_json(second.payload)
    assert detection.dedupe_key == alert.dedupe_key == "front_door_1700000000.mp4"
    assert detection.detected_classes == ["person"] and detection.analysis_pending is True
    assert detection.snapshot is not None and Path(detection.snapshot).is_file()
    assert set(json.loads(first.payload)) == {
        "clip_id",
        "camera_name",
        "detected_classes",
        "confidence",
        "ts",
        "snapshot",
        "analysis_pending",
        "dedupe_key",
    }


@pytest.mark.slow
async def test_a_clip_without_a_trigger_class_sends_neither(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given a detector that only sees a car
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber,
        build_pipeline(
            filter={"backend": "fake_filter", "config": {"classes": ["car"]}},
            notifiers=[mqtt_sink(mqtt_broker, mqtt_topic_prefix)],
        ) as components,
    ):
        # When a clip is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then nothing is published
        await subscriber.expect_silence(within=1.0)


async def test_email_sink_sends_a_short_person_at_camera_message_with_the_snapshot(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path, smtp_server: SMTPServer
) -> None:
    # Given an e-mail sink that opted in to detection events
    email = {
        "backend": "email",
        "on_detection": True,
        "min_risk_level": "high",
        "config": {
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "from_address": "homesec@example.test",
            "to_addresses": ["me@example.test"],
        },
    }
    async with build_pipeline(
        filter={"backend": "fake_filter", "config": {"box": [800, 300, 1000, 800]}},
        vlm={"backend": "fake_vlm", "config": {"risk_level": "low"}},
        notifiers=[email],
    ) as components:
        # When a low-risk clip with a person is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then the early e-mail went out (the final alert was routed away: risk too low)
    [mail] = await smtp_server.wait_for(1)
    assert mail.message["Subject"] == "HomeSec: person at front_door"
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
