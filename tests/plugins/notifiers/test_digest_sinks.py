"""The digest as the notifiers deliver it: retained on MQTT with a Home Assistant sensor, and
as a plain-text e-mail with the links of the clips worth a look."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from homesec.interfaces import DigestSink
from homesec.models.digest import Digest, DigestClip
from homesec.models.enums import DigestTrigger, RiskLevel
from homesec.plugins.notifiers.apprise import AppriseNotifier
from homesec.plugins.notifiers.email import EmailNotifier
from homesec.plugins.notifiers.mqtt import MQTTNotifier
from homesec.plugins.notifiers.webhook import WebhookNotifier, WebhookNotifierConfig
from tests.plugins.notifiers.helpers import MakeMQTTNotifier
from tests.plugins.notifiers.test_email import mail_config, make_notifier
from tests.plugins.notifiers.test_ha_discovery import Topics
from tests.services.http_receiver import HTTPReceiver
from tests.services.mosquitto import MQTTSubscriber, ThrowawayBroker
from tests.services.smtp_server import SMTPServer

DIGEST = Digest(
    period_start=datetime(2026, 12, 7, 8, tzinfo=UTC),
    period_end=datetime(2026, 12, 8, 8, tzinfo=UTC),
    trigger=DigestTrigger.SCHEDULE,
    clips=12,
    alerts=2,
    per_camera={"front_door": 9, "backyard": 3},
    activities={"delivery": 2, "passerby": 10},
    notable=[
        DigestClip(
            clip_id="backyard_1765100000.mp4",
            camera_name="backyard",
            ts=datetime(2026, 12, 7, 22, tzinfo=UTC),
            risk_level=RiskLevel.HIGH,
            summary="Someone tries the shed door.",
            alerted=True,
            link="https://storage.example/backyard_1765100000.mp4",
        )
    ],
    text="A quiet day: two deliveries, and someone tried the shed door at 22:00.",
    written_by="OpenAIAnalyzer",
)


async def test_mqtt_keeps_the_digest_retained_for_home_assistants_sensor(
    throwaway_broker: ThrowawayBroker, make_mqtt_notifier: MakeMQTTNotifier
) -> None:
    # Given an MQTT sink with discovery that takes the digest
    topics = Topics()
    notifier = await make_mqtt_notifier(
        **topics.config(throwaway_broker, ["front_door"], digest=True)
    )

    # When a digest is sent, and Home Assistant subscribes afterwards
    await notifier.send_digest(DIGEST)
    config_topic = f"{topics.discovery}/sensor/homesec/digest/config"
    async with MQTTSubscriber(throwaway_broker, config_topic) as configs:
        sensor = json.loads((await configs.next(timeout=10)).payload)
    async with MQTTSubscriber(throwaway_broker, sensor["state_topic"]) as state:
        message = await state.next(timeout=10)

    # Then the sensor reads the retained digest: its text as state, the rest as attributes
    assert message.retain
    assert Digest.model_validate_json(message.payload) == DIGEST
    assert sensor["json_attributes_topic"] == sensor["state_topic"] == f"{topics.state}/digest"
    assert sensor["value_template"] == "{{ value_json.text[:255] }}"
    assert sensor["device"]["identifiers"] == ["homesec"]


async def test_the_digest_is_mailed_as_text_with_the_links(smtp_server: SMTPServer) -> None:
    # Given an e-mail sink
    notifier = make_notifier(**mail_config(smtp_server))

    # When the digest is sent
    await notifier.send_digest(DIGEST)

    # Then one mail says the counts in its subject, the text and the links in its body
    [mail] = smtp_server.messages
    message = mail.message
    assert message["Subject"] == "HomeSec digest: 12 clips, 2 alerts"
    body = message.get_content()
    assert body.startswith(DIGEST.text)
    assert "backyard backyard_1765100000.mp4: https://storage.example/" in body


async def test_the_webhook_posts_the_digest_json_marked_as_a_digest(
    http_receiver: HTTPReceiver,
) -> None:
    # Given a webhook sink
    notifier = WebhookNotifier.create(
        WebhookNotifierConfig.model_validate({"url": http_receiver.url("/homesec")})
    )
    await notifier.start()

    # When the digest is sent
    await notifier.send_digest(DIGEST)
    await notifier.aclose()

    # Then the receiver got the digest's JSON, marked as a digest
    [request] = http_receiver.requests
    assert request.headers["x-homesec-event"] == "digest"
    assert Digest.model_validate_json(request.body) == DIGEST


def test_every_notifier_takes_the_digest() -> None:
    # Given every registered notifier kind
    # When each is asked whether it takes digests
    # Then all do (a sink with digest: true never silently gets nothing)
    for kind in (MQTTNotifier, EmailNotifier, AppriseNotifier, WebhookNotifier):
        assert issubclass(kind, DigestSink), kind
