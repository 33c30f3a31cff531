"""HomeSec on top of Frigate: a review item that ends becomes an alert on MQTT."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import tests.fakes.plugins  # noqa: F401
from homesec.models.alert import Alert
from tests.fakes.builders import make_config
from tests.fakes.running import running_app
from tests.services.frigate_fake import FakeEvent, FakeFrigate, FakeReview
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber


async def test_a_frigate_review_item_that_ends_becomes_an_alert(
    tmp_path: Path,
    person_clip: Path,
    fake_frigate: FakeFrigate,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given HomeSec with a Frigate camera and the MQTT notifier
    broker = {"host": mqtt_broker.host, "port": mqtt_broker.port}
    frigate_source = {
        "backend": "frigate",
        "config": {
            "mqtt": broker,
            "api_url": fake_frigate.url,
            "topic_prefix": fake_frigate.topic_prefix,
            "frigate_camera": "front_cam",
            "spool_dir": str(tmp_path / "frigate"),
            "catch_up_s": 0,
            "retry_min_s": 0.05,
        },
    }
    notifier = {
        "backend": "mqtt",
        "config": {**broker, "topic_template": mqtt_topic_prefix + "/alerts/{camera_name}"},
    }
    config = make_config(
        tmp_path,
        cameras=[{"name": "front_door", "source": frigate_source}],
        notifiers=[notifier],
    )
    review = fake_frigate.add_review(
        FakeReview(
            id="1700000000.5-e2e",
            camera="front_cam",
            start_time=1_700_000_000.0,
            end_time=1_700_000_020.0,
            clip=person_clip.read_bytes(),
        )
    )
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/alerts/#") as subscriber,
        running_app(config),
    ):
        # When Frigate says the item ended
        await fake_frigate.publish_review("end", review)

        # Then the clip goes through the pipeline and its alert is published
        message = await subscriber.next(timeout=30)

    alert = Alert.model_validate(json.loads(message.payload))
    assert str(message.topic) == f"{mqtt_topic_prefix}/alerts/front_door"
    assert alert.clip_id == "front_door_1700000000.mp4"
    assert alert.upload_failed is False
    assert Path(tmp_path / "storage" / "front_door" / alert.clip_id).is_file()


async def test_frigates_detections_stand_in_for_the_filter_and_the_summary_goes_back(
    tmp_path: Path, person_clip: Path, fake_frigate: FakeFrigate, mqtt_broker: BrokerAddress
) -> None:
    # Given HomeSec using Frigate's detections and writing summaries back, with a detector of
    # its own that would see nothing worth a look (a cat)
    config = make_config(
        tmp_path,
        cameras=[
            {
                "name": "front_door",
                "source": {
                    "backend": "frigate",
                    "config": {
                        "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
                        "api_url": fake_frigate.url,
                        "topic_prefix": fake_frigate.topic_prefix,
                        "spool_dir": str(tmp_path / "frigate"),
                        "catch_up_s": 0,
                        "use_frigate_detections": True,
                        "write_back": True,
                    },
                },
            }
        ],
        filter={"backend": "fake_filter", "config": {"classes": ["cat"]}},
    )
    review = fake_frigate.add_review(
        FakeReview(
            id="1700000000.6-e2e",
            camera="front_door",
            start_time=1_700_000_000.0,
            end_time=1_700_000_020.0,
            clip=person_clip.read_bytes(),
            events=[FakeEvent("1700000001.0-ev", "person", 1_700_000_001.0, score=0.88)],
        )
    )
    async with running_app(config) as app:
        # When Frigate says the item ended
        await fake_frigate.publish_review("end", review)

        # Then the VLM looks at the clip because Frigate saw a person, and Frigate gets its summary
        async with asyncio.timeout(30):
            while "1700000001.0-ev" not in fake_frigate.descriptions:
                await asyncio.sleep(0.05)
        state = await app.components.repository.get("front_door_1700000000.mp4")

    assert fake_frigate.descriptions["1700000001.0-ev"] == "A person walks to the door."
    assert state is not None and state.filter_result is not None
    assert state.filter_result.model == "frigate"
    assert state.filter_result.detected_classes == ["person"]
    assert state.analysis_result is not None
