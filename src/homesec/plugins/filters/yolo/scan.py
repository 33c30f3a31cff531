"""One clip through the detector: sampled frames in time order, stopping at the first
frame that settles the verdict (unless the whole clip is asked for: zones, stationary
objects). Each class keeps its first sighting and the distinct places it was seen in.
Runs inside a filter worker process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from homesec.models.results import Box, Detection, FilterResult, Place, iou
from homesec.models.zones import Zones, zones_of_box
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
    zones: Zones = field(default_factory=dict)
    """The camera's zones: with any, every sampled frame is looked at (no early stop)."""
    full_scan: bool = False
    """Look at every sampled frame, whatever is found early (stationary objects)."""


# Boxes of one class overlapping less than this are two places; a class seen in more
# places than the cap has surely moved, and the cap bounds the stored state.
_SAME_PLACE_IOU = 0.5
_MAX_PLACES = 16


@dataclass
class _Sighting:
    """The frames of a clip where one class was seen, the zones it stood in, its places."""

    first: Detection
    best_confidence: float
    zones: set[str]
    hits: int = 1
    places: list[Place] = field(default_factory=list)

    def seen_at(self, boxes: list[Box]) -> None:
        """One frame's boxes of the class: each place they fall on counts the frame once."""
        counted: set[int] = set()
        for box in boxes:
            index = next(
                (i for i, p in enumerate(self.places) if iou(p.box, box) >= _SAME_PLACE_IOU), None
            )
            if index is None and len(self.places) < _MAX_PLACES:
                self.places.append(Place(box=box, frames=1))
                counted.add(len(self.places) - 1)
            elif index is not None and index not in counted:
                counted.add(index)
                self.places[index].frames += 1


@dataclass
class _Verdict:
    zones: Zones
    full_scan: bool = False
    sightings: dict[int, _Sighting] = field(default_factory=dict)
    frames: int = 0

    def add(self, frame: SampledFrame, found: list[BoxDetection]) -> None:
        self.frames += 1
        height, width = frame.image.shape[:2]
        seen: set[int] = set()
        for detection in found:  # best first: the first box of a class is its best
            in_zones = zones_of_box(self.zones, detection.box, width, height)
            sighting = self.sightings.get(detection.class_id)
            if sighting is not None:
                sighting.zones.update(in_zones)
            if detection.class_id in seen:
                continue  # a frame is one hit; its other boxes only add zones and places
            seen.add(detection.class_id)
            if sighting is None:
                first = _first(frame, detection)
                self.sightings[detection.class_id] = _Sighting(
                    first, detection.confidence, set(in_zones)
                )
                continue
            sighting.hits += 1
            sighting.best_confidence = max(sighting.best_confidence, detection.confidence)
            if in_zones and not _in_a_zone(sighting.first, self.zones, frame):
                # The snapshot shows it where it matters: its first sighting in a zone.
                sighting.first = _first(frame, detection)
        for class_id in seen:
            boxes = [_scaled(frame, d.box) for d in found if d.class_id == class_id]
            self.sightings[class_id].seen_at(boxes)

    def settled(self, min_hits: int) -> bool:
        # With zones, the whole clip is looked at: someone seen first on the sidewalk (a
        # zone, or none) may walk onto the porch later, and only the policy knows which
        # zones count. Likewise for stationary objects: an intruder may come after the statue.
        if self.zones or self.full_scan:
            return False
        return any(sighting.hits >= min_hits for sighting in self.sightings.values())

    def result(self, model: str, min_hits: int) -> FilterResult:
        confirmed = [s for s in self.sightings.values() if s.hits >= min_hits]
        confirmed.sort(key=lambda s: (s.first.first_seen_s, -s.first.confidence))
        return FilterResult(
            detected_classes=[s.first.class_name for s in confirmed],
            confidence=max((s.best_confidence for s in confirmed), default=0.0),
            sampled_frames=self.frames,
            model=model,
            detections=[
                s.first.model_copy(update={"zones": sorted(s.zones), "places": s.places})
                for s in confirmed
            ],
        )


def _first(frame: SampledFrame, detection: BoxDetection) -> Detection:
    """The sighting in the original frame's pixels."""
    return Detection(
        class_name=COCO_CLASSES[detection.class_id],
        confidence=detection.confidence,
        first_seen_s=frame.time_s,
        box=_scaled(frame, detection.box),
    )


def _scaled(frame: SampledFrame, box: tuple[float, float, float, float]) -> Box:
    """A box of the sampled frame in the original frame's pixels."""
    height, width = frame.image.shape[:2]
    scale_x, scale_y = frame.source_size[0] / width, frame.source_size[1] / height
    x1, y1, x2, y2 = box
    return (x1 * scale_x, y1 * scale_y, x2 * scale_x, y2 * scale_y)


def _in_a_zone(detection: Detection, zones: Zones, frame: SampledFrame) -> bool:
    width, height = frame.source_size
    return bool(zones_of_box(zones, detection.box, width, height))


def scan_clip(
    detector: Detector,
    path: Path,
    request: ScanRequest,
    model_name: str,
    stats: SamplerStats | None = None,
) -> FilterResult:
    """Look for the requested classes; stop once one is seen in `min_hits` sampled frames."""
    verdict = _Verdict(request.zones, request.full_scan)
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
