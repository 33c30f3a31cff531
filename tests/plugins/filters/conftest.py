"""A running yolo filter shared by the filter tests, and clips made from the shared media."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from homesec.plugins.filters.yolo.plugin import YoloFilter, YoloFilterConfig
from tests.video.clip_fixtures import faststart_empty_scene, late_person_clip

__all__ = ["faststart_empty_scene", "late_person_clip"]

VEHICLES = ["bicycle", "car", "motorcycle", "bus", "truck"]


@pytest.fixture(scope="session")
def yolox_nano(models_dir: Path) -> Path:
    return models_dir / "yolox_nano.onnx"


@pytest.fixture(scope="session")
def yolo(yolox_nano: Path) -> Iterator[YoloFilter]:
    """YOLOX-nano looking for people and vehicles, every other setting at its default."""
    running = YoloFilter.create(
        YoloFilterConfig(model=str(yolox_nano), classes=["person", *VEHICLES])
    )
    yield running
    asyncio.run(running.aclose())
