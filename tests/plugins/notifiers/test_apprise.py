"""The `apprise` notifier delivering through Apprise's `json://` service to a local receiver."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from homesec.interfaces import Notifier
from homesec.models.alert import DetectionEvent
from homesec.models.enums import PluginType, RiskLevel
from homesec.plugins.notifiers.apprise import AppriseNotifier, AppriseNotifierConfig
from homesec.plugins.registry import load_notifier, validate_plugin_config
from tests.plugins.notifiers.helpers import camera_unhealthy_alert, names_the_problem, sample_alert
from tests.services.http_receiver import HTTPReceiver

URLS_ENV = "TEST_APPRISE_URLS"


def json_url(receiver: HTTPReceiver, path: str = "/apprise") -> str:
    return f"json://127.0.0.1:{receiver.port}{path}"


def make_notifier(monkeypatch: pytest.MonkeyPatch, urls: str, **config: Any) -> AppriseNotifier:
    monkeypatch.setenv(URLS_ENV, urls)
    raw = {"urls_env": [URLS_ENV], "timeout_s": 5.0, **config}
    return AppriseNotifier.create(AppriseNotifierConfig.model_validate(raw))


def test_registered_as_the_apprise_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the plugin registry and a URL in an env var
    monkeypatch.setenv(URLS_ENV, "json://127.0.0.1:9/apprise")

    # When the apprise backend is loaded by name
    notifier = load_notifier("apprise", {"urls_env": [URLS_ENV]})

    # Then it is an AppriseNotifier and a Notifier
    assert isinstance(notifier, Notifier)
    assert isinstance(notifier, AppriseNotifier)
    assert notifier.name == "apprise"


async def test_alert_is_delivered_with_title_body_and_snapshot(
    http_receiver: HTTPReceiver, monkeypatch: pytest.MonkeyPatch, snapshot: Path
) -> None:
    # Given a notifier whose env var names Apprise's json:// service on a local receiver
    notifier = make_notifier(monkeypatch, json_url(http_receiver))
    alert = sample_alert()

    # When an alert with a snapshot is sent
    await notifier.send(alert, snapshot)

    # Then the receiver got the rendered title and body, the snapshot, and a "failure" type
    [request] = http_receiver.requests
    payload = request.json()
    assert payload["title"] == "HomeSec · front_door: person_at_door (high risk)"
    assert payload["message"] == f"{alert.summary}\n{alert.view_url}"
    assert payload["type"] == "failure"
    [attachment] = payload["attachments"]
    assert attachment["filename"] == "front_door_1700000000.jpg"
    assert attachment["mimetype"] == "image/jpeg"
    assert base64.b64decode(attachment["base64"]) == snapshot.read_bytes()
    assert await notifier.ping() is True


async def test_every_url_in_the_env_var_is_notified(
    make_http_receiver: Callable[[], HTTPReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one env var holding three URLs, separated by a comma and whitespace
    first, second, third = make_http_receiver(), make_http_receiver(), make_http_receiver()
    urls = f"{json_url(first)}, {json_url(second)}\n {json_url(third)}"
    notifier = make_notifier(monkeypatch, urls, body_template="{{ clip_id }}")

    # When an alert without a snapshot is sent
    await notifier.send(sample_alert(risk_level=RiskLevel.LOW))

    # Then each receiver got it once, as "info", without attachments
    for receiver in (first, second, third):
        [request] = receiver.requests
        assert request.json()["message"] == "front_door_1700000000.mp4"
        assert request.json()["type"] == "info"
        assert request.json()["attachments"] == []


async def test_plain_urls_without_secrets_work_from_the_yaml(http_receiver: HTTPReceiver) -> None:
    # Given a notifier configured with a plain URL (nothing secret in it)
    config = AppriseNotifierConfig.model_validate({"urls": [json_url(http_receiver)]})
    notifier = AppriseNotifier.create(config)

    # When an alert is sent
    await notifier.send(sample_alert())

    # Then it is delivered
    assert len(http_receiver.requests) == 1


async def test_failing_service_raises_and_the_retry_skips_services_that_have_it(
    make_http_receiver: Callable[[], HTTPReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two services, the second of which answers 500
    healthy, failing = make_http_receiver(), make_http_receiver()
    failing.status = 500
    notifier = make_notifier(monkeypatch, f"{json_url(healthy)} {json_url(failing, '/down')}")
    alert = sample_alert()

    # When the alert is sent, it raises naming only the failing service
    with pytest.raises(
        ConnectionError, match=rf"1 of 2 service\(s\) failed: entry 2 of {URLS_ENV}"
    ):
        await notifier.send(alert)
    assert await notifier.ping() is False

    # ... and when the pipeline retries after the failing service recovered
    failing.status = 200
    await notifier.send(alert)

    # Then the healthy service got the alert once, the other one on the retry
    assert len(healthy.requests) == 1
    assert len(failing.requests) == 2
    assert await notifier.ping() is True


@pytest.mark.slow
async def test_service_down_raises_within_the_timeout_and_keeps_tokens_out_of_logs(
    closed_port: int,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given services that are down (refused) and hung, with tokens in their URLs
    caplog.set_level(logging.DEBUG)
    urls = (
        f"json://127.0.0.1:{closed_port}/token-aaa111 json://127.0.0.1:{silent_port}/token-bbb222"
    )
    notifier = make_notifier(monkeypatch, urls, timeout_s=1.0)

    # When an alert is sent
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionError, match="2 of 2") as caught:
        await notifier.send(sample_alert())

    # Then it gave up within its timeout, and no token was logged or raised
    assert loop.time() - started < 4.0
    for token in ("token-aaa111", "token-bbb222"):
        assert token not in str(caught.value)
        assert token not in caplog.text


async def test_system_alert_is_sent_with_its_own_title_and_body(
    http_receiver: HTTPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an apprise notifier
    notifier = make_notifier(monkeypatch, json_url(http_receiver))
    alert = camera_unhealthy_alert("no frames for 5 min")

    # When a system alert is sent
    await notifier.send_system(alert)

    # Then it is delivered with the system title and message, as a failure
    [request] = http_receiver.requests
    assert request.json()["title"] == "HomeSec needs attention: camera_unhealthy"
    assert request.json()["message"] == "no frames for 5 min"
    assert request.json()["type"] == "failure"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({}, "no Apprise URL"),
        ({"urls": ["json://user:hunter2@127.0.0.1/x"]}, "must hold no secret"),
        ({"urls": ["tgram://123456789:AAHabcdefghijklmnopqrstuvwxyz0123/42"]}, "no secret"),
        ({"urls": ["hassio://127.0.0.1:8123/long-lived-token"]}, "must hold no secret"),
        ({"urls": ["nonsense://host"]}, "urls[0] 'nonsense://host' is not a URL Apprise"),
        ({"urls_env": ["TEST_APPRISE_BAD"]}, "entry 2 of TEST_APPRISE_BAD is not a URL Apprise"),
        ({"urls_env": ["HOMESEC_TEST_UNSET_VAR"]}, "is not set"),
        ({"urls": ["json://127.0.0.1/x"], "title_template": "{{ camera }}"}, "undefined"),
        ({"urls": ["json://127.0.0.1/x"], "body_template": "{% for %}"}, "body_template"),
    ],
)
def test_bad_config_is_rejected_at_load(
    override: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an apprise config with one problem
    monkeypatch.delenv("HOMESEC_TEST_UNSET_VAR", raising=False)
    monkeypatch.setenv("TEST_APPRISE_BAD", "json://127.0.0.1/ok nonsense://secret-token-xyz")

    # When it is validated as the apprise notifier's config
    with pytest.raises(ValidationError) as caught:
        validate_plugin_config(PluginType.NOTIFIER, "apprise", override)

    # Then the error names the problem, never a URL from an env var
    assert names_the_problem(caught.value, problem)
    assert "secret-token-xyz" not in str(caught.value)


async def test_home_assistant_replaces_the_detection_message_with_the_alert(
    http_receiver: HTTPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a notifier whose service is Home Assistant (persistent notifications), served by a
    # local receiver, and the detection event and final alert of one clip, then another clip
    url = f"hassio://127.0.0.1:{http_receiver.port}/ha-token-123"
    notifier = make_notifier(monkeypatch, url)
    alert = sample_alert()
    detection = DetectionEvent(
        clip_id=alert.clip_id,
        camera_name=alert.camera_name,
        detected_classes=["person"],
        confidence=0.9,
        ts=alert.ts,
        snapshot=None,
        analysis_pending=True,
        dedupe_key=alert.dedupe_key,
    )
    other = sample_alert(99)

    # When the detection event, its alert and the other clip's alert are sent
    await notifier.send_detection(detection)
    await notifier.send(alert)
    await notifier.send(other)

    # Then the clip's two messages carry the same notification id (the alert replaces the
    # detection message in Home Assistant), and the other clip's message its own
    requests = await http_receiver.wait_for(3)
    assert {r.path for r in requests} == {"/api/services/persistent_notification/create"}
    ids = [r.json()["notification_id"] for r in requests]
    assert ids[0] == ids[1] == "front_door_1700000000_mp4"
    assert ids[2] == "front_door_1700000099_mp4"
    assert "person" in requests[0].json()["title"] + requests[0].json()["message"]
    assert requests[1].json()["message"] != requests[0].json()["message"]
