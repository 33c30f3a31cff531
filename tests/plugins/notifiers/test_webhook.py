"""The `webhook` notifier against a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from homesec.interfaces import Notifier
from homesec.models.enums import PluginType
from homesec.plugins.notifiers.webhook import WebhookNotifier, WebhookNotifierConfig
from homesec.plugins.registry import load_notifier, validate_plugin_config
from tests.plugins.notifiers.helpers import (
    StartNotifier,
    camera_unhealthy_alert,
    names_the_problem,
    sample_alert,
)
from tests.services.http_receiver import HTTPReceiver, ReceivedRequest

SECRET = "webhook-signing-key-42"
MakeNotifier = Callable[..., Awaitable[WebhookNotifier]]


def signature_is_valid(secret: str, request: ReceivedRequest, max_age_s: float = 300) -> bool:
    """What a receiver does (written from the documented scheme, not from our code)."""
    timestamp = request.headers.get("x-homesec-timestamp", "")
    presented = request.headers.get("x-homesec-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age_s:
        return False
    signed = timestamp.encode() + b"." + request.body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(presented, expected)


@pytest.fixture
def make_notifier(start_notifier: StartNotifier) -> MakeNotifier:
    async def make(**config: Any) -> WebhookNotifier:
        notifier = WebhookNotifier.create(WebhookNotifierConfig.model_validate(config))
        return await start_notifier(notifier)

    return make


def test_registered_as_the_webhook_notifier() -> None:
    # Given the plugin registry and a minimal config
    raw = {"url": "https://hooks.example.invalid/homesec"}

    # When the webhook backend is loaded by name
    notifier = load_notifier("webhook", raw)

    # Then it is a WebhookNotifier and a Notifier
    assert isinstance(notifier, Notifier)
    assert isinstance(notifier, WebhookNotifier)
    assert notifier.name == "webhook"


async def test_alert_is_posted_as_exactly_the_alert_json(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier
) -> None:
    # Given a notifier without a signing secret
    notifier = await make_notifier(url=http_receiver.url("/homesec"))
    alert = sample_alert()

    # When an alert is sent
    await notifier.send(alert)

    # Then the receiver got the alert's JSON, byte for byte, marked as an alert, unsigned
    [request] = http_receiver.requests
    assert (request.method, request.path) == ("POST", "/homesec")
    assert request.body == alert.model_dump_json().encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-homesec-event"] == "alert"
    assert "x-homesec-signature" not in request.headers
    assert await notifier.ping() is True


async def test_signed_alert_passes_the_receivers_signature_check(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a receiver that checks signatures, and a notifier with the same secret
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    http_receiver.check = lambda request: signature_is_valid(SECRET, request)
    notifier = await make_notifier(url=http_receiver.url(), secret_env="TEST_WEBHOOK_SECRET")

    # When an alert is sent
    await notifier.send(sample_alert())

    # Then the receiver accepted it, and the same body with another timestamp would not pass
    [request] = http_receiver.requests
    assert request.headers["x-homesec-signature"].startswith("sha256=")
    replayed = ReceivedRequest(
        request.method,
        request.path,
        {**request.headers, "x-homesec-timestamp": str(int(time.time()) + 1)},
        request.body,
    )
    assert not signature_is_valid(SECRET, replayed)


async def test_wrong_secret_is_rejected_by_the_receiver_and_raises(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a receiver that checks signatures, and a notifier with another secret
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "not-the-shared-secret")
    http_receiver.check = lambda request: signature_is_valid(SECRET, request)
    notifier = await make_notifier(url=http_receiver.url(), secret_env="TEST_WEBHOOK_SECRET")

    # When an alert is sent, then the 401 makes it raise (the pipeline will retry)
    with pytest.raises(ConnectionError, match="HTTP 401"):
        await notifier.send(sample_alert())
    assert await notifier.ping() is False


async def test_server_error_raises_and_the_next_success_clears_it(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier
) -> None:
    # Given a receiver that answers 503
    http_receiver.status = 503
    notifier = await make_notifier(url=http_receiver.url())

    # When an alert is sent, it raises; once the receiver is fine again, it is delivered
    with pytest.raises(ConnectionError, match="HTTP 503"):
        await notifier.send(sample_alert())
    assert await notifier.ping() is False
    http_receiver.status = 204
    await notifier.send(sample_alert())

    # Then the receiver saw both attempts, and the sink is healthy again
    assert len(http_receiver.requests) == 2
    assert await notifier.ping() is True


async def test_url_from_env_is_used_and_its_path_never_shown(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a URL holding a secret path in an env var, and a receiver answering 500
    secret_path = "/api/webhook/s3cr3t-webhook-id"
    monkeypatch.setenv("TEST_WEBHOOK_URL", http_receiver.url(secret_path))
    http_receiver.status = 500
    notifier = await make_notifier(url_env="TEST_WEBHOOK_URL")

    # When an alert is sent
    with pytest.raises(ConnectionError) as caught:
        await notifier.send(sample_alert())

    # Then it went to that URL, and the error names only the scheme, host and port
    assert http_receiver.requests[0].path == secret_path
    assert "s3cr3t-webhook-id" not in str(caught.value)
    assert f"http://127.0.0.1:{http_receiver.port}" in str(caught.value)


async def test_system_alert_is_posted_as_the_system_alert_json(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier
) -> None:
    # Given a webhook notifier
    notifier = await make_notifier(url=http_receiver.url())
    alert = camera_unhealthy_alert("no frames")

    # When a system alert is sent
    await notifier.send_system(alert)

    # Then it is posted as the SystemAlert JSON, marked as a system event
    [request] = http_receiver.requests
    assert request.headers["x-homesec-event"] == "system"
    assert request.body == alert.model_dump_json().encode()


async def test_receiver_down_raises_at_once(closed_port: int, make_notifier: MakeNotifier) -> None:
    # Given a notifier whose receiver is not running
    notifier = await make_notifier(url=f"http://127.0.0.1:{closed_port}/hook")

    # When an alert is sent, then it raises quickly so the pipeline can retry
    async with asyncio.timeout(2.0):
        with pytest.raises(ConnectionError, match="ConnectError"):
            await notifier.send(sample_alert())


@pytest.mark.slow
@pytest.mark.parametrize("peer", ["silent", "slow"])
async def test_hung_receiver_raises_within_the_timeout(
    peer: str,
    silent_port: int,
    http_receiver: HTTPReceiver,
    make_notifier: MakeNotifier,
) -> None:
    # Given a receiver that never answers, or answers far too late
    http_receiver.delay_s = 5.0
    url = f"http://127.0.0.1:{silent_port}/hook" if peer == "silent" else http_receiver.url()
    notifier = await make_notifier(url=url, timeout_s=0.5)

    # When an alert is sent, then it gives up after timeout_s
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError, match=r"0\.5 s"):
        await notifier.send(sample_alert())
    assert loop.time() - started < 1.5


async def test_closed_notifier_refuses_to_send(
    http_receiver: HTTPReceiver, make_notifier: MakeNotifier
) -> None:
    # Given a notifier that was closed (its HTTP client released)
    notifier = await make_notifier(url=http_receiver.url())
    await notifier.aclose()

    # When an alert is sent, then it is refused and nothing is posted
    with pytest.raises(RuntimeError, match="closed"):
        await notifier.send(sample_alert())
    assert http_receiver.requests == []


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({}, "exactly one of url and url_env"),
        ({"url": "https://a.invalid/x", "url_env": "PATH"}, "exactly one of url and url_env"),
        ({"url": "ftp://a.invalid/x"}, "http:// or https://"),
        ({"url": "hooks.example.invalid/x"}, "http:// or https://"),
        ({"url_env": "HOME"}, "the value of HOME must be"),
        ({"url": "https://a.invalid/x", "secret_env": "HOMESEC_TEST_UNSET_VAR"}, "is not set"),
        ({"url": "https://a.invalid/x", "timeout_s": 0}, "greater_than"),
    ],
)
def test_bad_config_is_rejected_at_load(
    override: dict[str, Any], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a webhook config with one problem
    monkeypatch.delenv("HOMESEC_TEST_UNSET_VAR", raising=False)
    monkeypatch.setenv("HOME", "/root")

    # When it is validated as the webhook notifier's config
    with pytest.raises(ValidationError) as caught:
        validate_plugin_config(PluginType.NOTIFIER, "webhook", override)

    # Then the error names the problem (never the value of an env var)
    assert names_the_problem(caught.value, problem)
    assert "/root" not in str(caught.value)
