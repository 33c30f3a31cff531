"""The detector's scan with zones, its frames and boxes scripted: with zones, every sampled
frame is looked at, so someone who walks into a zone late in the clip is seen there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homesec.models.zones import Zones
from homesec.plugins.filters.yolo import scan
from homesec.plugins.filters.yolo.model import BoxDetection
from homesec.video.sampler import SampledFrame

WIDTH, HEIGHT = 640, 480
SIDEWALK = BoxDetection(0, 0.9, (100.0, 300.0, 160.0, 450.0))  # feet at y 0.94
PORCH = BoxDetection(0, 0.9, (280.0, 120.0, 340.0, 260.0))  # feet at (0.48, 0.54)
ZONES: Zones = {
    "sidewalk": [(0.0, 0.8), (1.0, 0.8), (1.0, 1.0), (0.0, 1.0)],
    "porch": [(0.3, 0.3), (0.7, 0.3), (0.7, 0.6), (0.3, 0.6)],
}


class _ScriptedDetector:
    """Answers each sampled frame with the boxes of its script, in order."""

    input_width, input_height, pixel_format = WIDTH, HEIGHT, "bgr24"

    def __init__(self, script: list[list[BoxDetection]]) -> None:
        self._script = script
        self.frames_seen = 0

    def detect(self, *_: Any) -> list[BoxDetection]:
        found = self._script[self.frames_seen]
        self.frames_seen += 1
        return found


def _scan(
    monkeypatch: pytest.MonkeyPatch, script: list[list[BoxDetection]], zones: Zones
) -> tuple[Any, int]:
    frames = [
        SampledFrame(index * 0.5, np.zeros((HEIGHT, WIDTH, 3), np.uint8), (WIDTH, HEIGHT))
        for index in range(len(script))
    ]

    def sampled(*_: Any, **__: Any) -> Iterator[SampledFrame]:
        yield from frames  # a generator, as the real sampler

    monkeypatch.setattr(scan, "sample_frames", sampled)
    detector = _ScriptedDetector(script)
    request = scan.ScanRequest(
        class_ids=(0,),
        min_confidence=0.5,
        iou_threshold=0.45,
        sample_fps=2.0,
        min_hits=1,
        max_frames=None,
        draft_decode=True,
        decode_threads=1,
        zones=zones,
    )
    result = scan.scan_clip(detector, Path("clip.mp4"), request, "scripted")  # type: ignore[arg-type]
    return result, detector.frames_seen


def test_someone_who_walks_from_the_sidewalk_onto_the_porch_is_seen_on_the_porch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a person on the sidewalk for two frames, then on the porch for two
    script = [[SIDEWALK], [SIDEWALK], [PORCH], [PORCH]]

    # When the clip is scanned with the camera's zones
    result, frames_seen = _scan(monkeypatch, script, ZONES)

    # Then every frame was looked at, and the person was on both
    assert frames_seen == 4
    [person] = result.detections
    assert person.zones == ["porch", "sidewalk"]


def test_without_zones_the_scan_still_stops_once_a_class_is_confirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the same walk, and a camera without zones
    script = [[SIDEWALK], [SIDEWALK], [PORCH], [PORCH]]

    # When the clip is scanned
    result, frames_seen = _scan(monkeypatch, script, {})

    # Then the first sighting settles it
    assert frames_seen == 1 and result.detected_classes == ["person"]
