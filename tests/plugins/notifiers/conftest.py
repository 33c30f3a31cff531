"""Fixtures of the notifier tests: a snapshot, login credentials, started notifiers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from homesec.interfaces import Notifier
from homesec.plugins.notifiers.mqtt import MQTTNotifier, MQTTNotifierConfig
from tests.plugins.notifiers.helpers import (
    PASSWORD,
    USER,
    AnyNotifier,
    MakeMQTTNotifier,
    StartNotifier,
    write_jpeg,
)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return write_jpeg(tmp_path / "snapshot.jpg")


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """USER and PASSWORD in env vars, as the config keys that name them."""
    monkeypatch.setenv("TEST_NOTIFIER_USER", USER)
    monkeypatch.setenv("TEST_NOTIFIER_PASSWORD", PASSWORD)
    return {"username_env": "TEST_NOTIFIER_USER", "password_env": "TEST_NOTIFIER_PASSWORD"}


@pytest.fixture
async def start_notifier() -> AsyncIterator[StartNotifier]:
    started: list[Notifier] = []

    async def start(notifier: AnyNotifier) -> AnyNotifier:
        started.append(notifier)
        await notifier.start()
        return notifier

    yield start
    for notifier in started:
        await notifier.aclose()


@pytest.fixture
def make_mqtt_notifier(start_notifier: StartNotifier) -> MakeMQTTNotifier:
    """Starts an `mqtt` notifier from config keys."""

    async def make(**config: Any) -> MQTTNotifier:
        return await start_notifier(MQTTNotifier.create(MQTTNotifierConfig.model_validate(config)))

    return make
