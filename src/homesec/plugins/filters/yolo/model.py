"""A YOLO-family detector on ONNX Runtime: both output layouts, letterbox, decode, NMS.

Two layouts are read, told apart by the shape of the model's output:

- YOLOX (Megvii releases): 1xNx85, raw grid offsets that need the stride decode (strides
  8/16/32), objectness times class score; input BGR 0..255, letterboxed top-left, pad 114.
- Ultralytics YOLOv8 / YOLO11 exports: 1x84xN, decoded cx,cy,w,h then 80 class scores, no
  objectness; input RGB scaled to 0..1, letterboxed centred, pad 114.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from homesec.plugins.filters.yolo.coco import COCO_CLASSES

_PAD_VALUE = 114
_YOLOX_STRIDES = (8, 16, 32)
_BOX_AND_OBJECTNESS = 5
_BOX = 4

FloatArray = NDArray[np.float32]


class ModelFormatError(Exception):
    """The file is not a detector this filter can run. Carries only its message."""


class Layout(StrEnum):
    """How a model lays out its output."""

    YOLOX = "yolox"
    ULTRALYTICS = "ultralytics"


@dataclass(frozen=True)
class BoxDetection:
    """One detected object after NMS."""

    class_id: int
    confidence: float
    box: tuple[float, float, float, float]
    """x1, y1, x2, y2 in pixels of the image given to `Detector.detect`."""


@dataclass(frozen=True)
class _Letterbox:
    scale: float
    pad_x: int
    pad_y: int


class Detector:
    """One ONNX model, loaded once, run on one image at a time."""

    def __init__(
        self,
        path: Path,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 0,
        input_size: int = 640,
    ) -> None:
        self._session = _open_session(path, providers, threads)
        self._input = self._session.get_inputs()[0]
        self.input_width, self.input_height = _input_size(self._input.shape, input_size)
        # The first run allocates; it also reveals the output shape of dynamic models.
        output = self._run(np.zeros((1, 3, self.input_height, self.input_width), np.float32))
        self.layout = _layout(output.shape, path)
        self._grid = self._yolox_grid(output.shape[1]) if self.layout is Layout.YOLOX else None

    @property
    def pixel_format(self) -> Literal["bgr24", "rgb24"]:
        """The channel order the model was trained on."""
        return "bgr24" if self.layout is Layout.YOLOX else "rgb24"

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses, preferred first."""
        return list(self._session.get_providers())

    def detect(
        self,
        image: NDArray[np.uint8],
        class_ids: Sequence[int],
        min_confidence: float,
        iou_threshold: float = 0.45,
    ) -> list[BoxDetection]:
        """Objects of `class_ids` in an HxWx3 image (channel order: `pixel_format`)."""
        blob, letterbox = self._prepare(image)
        output = self._run(blob)
        ids = np.asarray(class_ids, dtype=np.intp)
        match self.layout:
            case Layout.YOLOX:
                boxes, scores = self._yolox_candidates(output[0], ids, min_confidence)
            case Layout.ULTRALYTICS:
                boxes, scores = _ultralytics_candidates(output[0], ids, min_confidence)
        height, width = image.shape[:2]
        boxes = _unletterbox(boxes, letterbox, width, height)
        found: list[BoxDetection] = []
        for column, class_id in enumerate(class_ids):
            rows = np.flatnonzero(scores[:, column] >= min_confidence)
            for row in rows[_nms(boxes[rows], scores[rows, column], iou_threshold)]:
                x1, y1, x2, y2 = (float(v) for v in boxes[row])
                confidence = float(scores[row, column])
                found.append(BoxDetection(int(class_id), confidence, (x1, y1, x2, y2)))
        return sorted(found, key=lambda d: d.confidence, reverse=True)

    def _run(self, blob: FloatArray) -> FloatArray:
        outputs = self._session.run(None, {self._input.name: blob})
        return np.asarray(outputs[0], dtype=np.float32)

    def _prepare(self, image: NDArray[np.uint8]) -> tuple[FloatArray, _Letterbox]:
        height, width = image.shape[:2]
        scale = min(self.input_width / width, self.input_height / height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size != (width, height):
            # Frames from the sampler already fit; other callers' images are resized here.
            image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
            width, height = size
        pad_x, pad_y = 0, 0
        if self.layout is Layout.ULTRALYTICS:
            pad_x, pad_y = (self.input_width - width) // 2, (self.input_height - height) // 2
        canvas = np.full((self.input_height, self.input_width, 3), _PAD_VALUE, np.uint8)
        canvas[pad_y : pad_y + height, pad_x : pad_x + width] = image
        blob = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
        if self.layout is Layout.ULTRALYTICS:
            blob *= 1.0 / 255.0
        return blob, _Letterbox(scale, pad_x, pad_y)

    def _yolox_grid(self, anchors: int) -> tuple[FloatArray, FloatArray]:
        cells, strides = [], []
        for stride in _YOLOX_STRIDES:
            rows, cols = self.input_height // stride, self.input_width // stride
            xs, ys = np.meshgrid(np.arange(cols), np.arange(rows))
            cells.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
            strides.append(np.full((rows * cols, 1), stride))
        grid = np.concatenate(cells).astype(np.float32)
        if grid.shape[0] != anchors:
            raise ModelFormatError(
                f"YOLOX output has {anchors} anchors, expected {grid.shape[0]} for a "
                f"{self.input_width}x{self.input_height} input with strides 8/16/32"
            )
        return grid, np.concatenate(strides).astype(np.float32)

    def _yolox_candidates(
        self, prediction: FloatArray, ids: NDArray[np.intp], min_confidence: float
    ) -> tuple[FloatArray, FloatArray]:
        assert self._grid is not None
        cells, strides = self._grid
        # score = objectness x class score <= objectness: most rows drop out here.
        rows = np.flatnonzero(prediction[:, _BOX] >= min_confidence)
        kept = prediction[rows]
        scores = kept[:, _BOX : _BOX + 1] * kept[:, _BOX_AND_OBJECTNESS + ids]
        centres = (kept[:, :2] + cells[rows]) * strides[rows]
        sizes = np.exp(kept[:, 2:4]) * strides[rows]
        return _corners(centres, sizes), scores


def _ultralytics_candidates(
    prediction: FloatArray, ids: NDArray[np.intp], min_confidence: float
) -> tuple[FloatArray, FloatArray]:
    scores = prediction[_BOX + ids].T
    rows = np.flatnonzero(scores.max(axis=1) >= min_confidence)
    boxes = prediction[:_BOX, rows].T
    return _corners(boxes[:, :2], boxes[:, 2:4]), scores[rows]


def _corners(centres: FloatArray, sizes: FloatArray) -> FloatArray:
    return np.concatenate((centres - sizes / 2, centres + sizes / 2), axis=1)


def _unletterbox(boxes: FloatArray, letterbox: _Letterbox, width: int, height: int) -> FloatArray:
    shift = np.array([letterbox.pad_x, letterbox.pad_y] * 2, np.float32)
    boxes = (boxes - shift) / letterbox.scale
    limits = np.array([width, height] * 2, np.float32)
    return np.clip(boxes, 0, limits)


def _nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> NDArray[np.intp]:
    """Indices of the boxes kept by OpenCV's greedy non-maximum suppression, best first."""
    rects = np.concatenate((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]), axis=1)  # x, y, w, h
    kept = cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), 0.0, iou_threshold)
    return np.asarray(kept, dtype=np.intp).reshape(-1)


def _open_session(path: Path, providers: Sequence[str], threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Decoding runs between inferences on the same cores: threads spinning idle would
    # steal its CPU time.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises bare RuntimeError subclasses
        raise ModelFormatError(f"{path}: not a loadable ONNX model ({exc})") from exc


def _input_size(shape: Sequence[int | str | None], default: int) -> tuple[int, int]:
    if len(shape) != 4:
        raise ModelFormatError(f"expected a 1x3xHxW image input, got shape {list(shape)}")
    height, width = shape[2], shape[3]
    if isinstance(height, int) and isinstance(width, int):
        return width, height
    return default, default


def _layout(shape: tuple[int, ...], path: Path) -> Layout:
    classes = len(COCO_CLASSES)
    if len(shape) == 3 and shape[2] == _BOX_AND_OBJECTNESS + classes:
        return Layout.YOLOX
    if len(shape) == 3 and shape[1] == _BOX + classes:
        return Layout.ULTRALYTICS
    raise ModelFormatError(
        f"{path}: unsupported output shape {list(shape)}; expected 1xNx85 (YOLOX) or "
        f"1x84xN (Ultralytics YOLOv8/YOLO11), for the 80 COCO classes"
    )
