"""A pipeline built from a config with the real repository (SQLite), storage and policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from homesec.app import Components, build_components
from tests.fakes.builders import make_config
from tests.services.mosquitto import BrokerAddress

BuildPipeline = Callable[..., Any]


def mqtt_sink(broker: BrokerAddress, prefix: str) -> dict[str, Any]:
    """The MQTT notifier's config entry, taking detection events too, on topics under `prefix`."""
    return {
        "backend": "mqtt",
        "on_detection": True,
        "config": {
            "host": broker.host,
            "port": broker.port,
            "topic_template": prefix + "/alerts/{camera_name}",
            "detection_topic_template": prefix + "/detections/{camera_name}",
        },
    }


@pytest.fixture
def build_pipeline(tmp_path: Path) -> BuildPipeline:
    """`async with build_pipeline(**sections) as components:` started and closed around."""

    @asynccontextmanager
    async def build(**sections: Any) -> AsyncIterator[Components]:
        components = build_components(make_config(tmp_path, **sections))
        await components.start()
        try:
            yield components
        finally:
            await components.aclose()

    return build
