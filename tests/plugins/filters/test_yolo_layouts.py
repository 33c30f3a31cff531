"""Both output layouts (YOLOX 1xNx85, Ultralytics 1x84xN), static and dynamic input sizes,
decode to the same people on the same frame."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from homesec.plugins.filters.yolo.model import Detector, Layout
from homesec.plugins.filters.yolo.plugin import YoloFilter, YoloFilterConfig
from homesec.video.sampler import sample_frames

# The detector runs every model layout on real clips.
pytestmark = pytest.mark.slow

Box = tuple[float, float, float, float]
MODELS = {
    "yolox_nano": (Layout.YOLOX, 416),
    "yolox_nano_dyn": (Layout.YOLOX, 640),
    "yolov8n_int8": (Layout.ULTRALYTICS, 640),
}


def iou(a: Box, b: Box) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


async def test_every_layout_reports_the_same_first_person(
    models_dir: Path, person_clip: Path
) -> None:
    # Given one filter per model: YOLOX static 416, YOLOX dynamic (640), YOLOv8 int8 640
    filters = {
        name: YoloFilter.create(YoloFilterConfig(model=str(models_dir / f"{name}.onnx")))
        for name in MODELS
    }
    try:
        # When each checks the front door clip
        results = await asyncio.gather(*(f.detect(person_clip) for f in filters.values()))
    finally:
        await asyncio.gather(*(f.aclose() for f in filters.values()))

    # Then each sees its best person on the first frame, in the same place
    people = {
        result.model: next(d for d in result.detections if d.class_name == "person")
        for result in results
    }
    assert set(people) == set(MODELS)
    reference = people["yolox_nano"]
    for person in people.values():
        assert person.first_seen_s == 0.0
        assert iou(person.box, reference.box) > 0.5


@pytest.mark.parametrize("name", ["yolox_nano_dyn", "yolov8n_int8"])
def test_every_confident_person_is_found_by_each_layout(
    models_dir: Path, person_clip: Path, name: str
) -> None:
    # Given YOLOX-nano and another model, each fed the first frame at its own input size
    boxes: dict[str, list[Box]] = {}
    for model in ("yolox_nano", name):
        detector = Detector(models_dir / f"{model}.onnx", threads=1)
        assert (detector.layout, detector.input_width) == MODELS[model]
        frame = next(
            sample_frames(
                person_clip,
                fit=(detector.input_width, detector.input_height),
                pixel_format=detector.pixel_format,
            )
        )
        scale = frame.source_size[0] / frame.image.shape[1]

        # When both look for people
        found = detector.detect(frame.image, [0], min_confidence=0.6)
        boxes[model] = [
            (x1 * scale, y1 * scale, x2 * scale, y2 * scale)
            for x1, y1, x2, y2 in (d.box for d in found)
        ]

    # Then every person YOLOX-nano is sure of is found by the other model too
    assert len(boxes["yolox_nano"]) >= 3
    for box in boxes["yolox_nano"]:
        assert max(iou(box, other) for other in boxes[name]) > 0.5
