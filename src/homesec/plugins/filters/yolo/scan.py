"""One clip through the detector: sampled frames in time order, stopping at the first
frame that settles the verdict. Runs inside a filter worker process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from homesec.models.results import Detection, FilterResult
from homesec.plugins.filters.yolo.coco import COCO_CLASSES
from homesec.plugins.filters.yolo.model import BoxDetection, Detector
from homesec.video.decoding import SamplerStats
from homesec.video.prefetch import prefetched
from homesec.video.sampler import SampledFrame, sample_frames


@dataclass(frozen=True)
class ScanRequest:
    """What to look for in one clip, and how hard (config merged with per-call overrides)."""

    class_ids: tuple[int, ...]
    min_confidence: float
    iou_threshold: float
    sample_fps: float
    min_hits: int
    max_frames: int | None
    draft_decode: bool
    decode_threads: int


@dataclass
class _Sighting:
    """The frames of a clip where one class was seen."""

    first: Detection
    best_confidence: float
    hits: int = 1


@dataclass
class _Verdict:
    sightings: dict[int, _Sighting] = field(default_factory=dict)
    frames: int = 0

    def add(self, frame: SampledFrame, found: list[BoxDetection]) -> None:
        self.frames += 1
        height, width = frame.image.shape[:2]
        scale_x, scale_y = frame.source_size[0] / width, frame.source_size[1] / height
        seen: set[int] = set()
        for detection in found:  # best first: the first box of a class is its best
            if detection.class_id in seen:
                continue
            seen.add(detection.class_id)
            sighting = self.sightings.get(detection.class_id)
            if sighting is None:
                x1, y1, x2, y2 = detection.box
                box = (x1 * scale_x, y1 * scale_y, x2 * scale_x, y2 * scale_y)
                first = Detection(
                    class_name=COCO_CLASSES[detection.class_id],
                    confidence=detection.confidence,
                    first_seen_s=frame.time_s,
                    box=box,
                )
                self.sightings[detection.class_id] = _Sighting(first, detection.confidence)
            else:
                sighting.hits += 1
                sighting.best_confidence = max(sighting.best_confidence, detection.confidence)

    def settled(self, min_hits: int) -> bool:
        return any(sighting.hits >= min_hits for sighting in self.sightings.values())

    def result(self, model: str, min_hits: int) -> FilterResult:
        confirmed = [s for s in self.sightings.values() if s.hits >= min_hits]
        confirmed.sort(key=lambda s: (s.first.first_seen_s, -s.first.confidence))
        return FilterResult(
            detected_classes=[s.first.class_name for s in confirmed],
            confidence=max((s.best_confidence for s in confirmed), default=0.0),
            sampled_frames=self.frames,
            model=model,
            detections=[s.first for s in confirmed],
        )


def scan_clip(
    detector: Detector,
    path: Path,
    request: ScanRequest,
    model_name: str,
    stats: SamplerStats | None = None,
) -> FilterResult:
    """Look for the requested classes; stop once one is seen in `min_hits` sampled frames."""
    verdict = _Verdict()
    frames = sample_frames(
        path,
        fps=request.sample_fps,
        max_frames=request.max_frames,
        fit=(detector.input_width, detector.input_height),
        pixel_format=detector.pixel_format,
        draft=request.draft_decode,
        threads=request.decode_threads,
        stats=stats,
    )
    with prefetched(frames) as ahead:  # leaving early stops decoding and closes the file
        for frame in ahead:
            found = detector.detect(
                frame.image, request.class_ids, request.min_confidence, request.iou_threshold
            )
            verdict.add(frame, found)
            if verdict.settled(request.min_hits):
                break
    return verdict.result(model_name, request.min_hits)
