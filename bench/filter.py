"""Object filter speed on the 20 s 1080p clips, side by side with the plain approach.

For the positive clip (people from the first frame) and the negative one (an empty lawn),
prints seconds per clip, the speed-up over real time, frames decoded and peak memory, for:

- the `yolo` filter, through its public API (worker process, early exit, 2 fps sampling);
- the plain approach: cv2.VideoCapture reading every frame, the same detector on every 7th
  frame (about 2 fps at 15 fps), stopping at the first hit too.

Both use YOLOX-nano (416), look for people and vehicles, and run in a worker process with
the model loaded. Times are the median (and best) of `--repeat` warm runs, the two
approaches taking turns so both see the same load; the filter's times include the trip to
its worker. The cold start (pool + model + first clip) is printed apart. Peak memory is
the high-water RSS of the worker process (Linux /proc). A bare inference is timed first, to
show how busy the machine is (the models README measured about 6 ms on an idle one).

    uv run python bench/filter.py [--repeat 5]

Media and models come from $HOMESEC_SHARED_DIR, or ../shared next to the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from homesec.plugins.filters.yolo.coco import COCO_INDEX
from homesec.plugins.filters.yolo.model import Detector
from homesec.plugins.filters.yolo.plugin import YoloFilter, YoloFilterConfig
from homesec.plugins.filters.yolo.scan import ScanRequest, scan_clip
from homesec.video.clip import probe_clip
from homesec.video.decoding import SamplerStats

SHARED = Path(os.environ.get("HOMESEC_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
CLIPS = {
    "positive": SHARED / "media" / "front_door_1700000000.mp4",
    "negative": SHARED / "media" / "backyard_1700000100.mp4",
}
MODEL = SHARED / "models" / "yolox_nano.onnx"
CLASSES = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]
PLAIN_EVERY = 7


@dataclass
class Runs:
    """Repeated runs of one approach on one clip."""

    seconds: list[float] = field(default_factory=list)
    frames_decoded: int = 0
    frames_examined: int = 0
    found: list[str] = field(default_factory=list)
    peak_rss_mb: float = float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per clip and approach")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; model {MODEL.name}; {args.repeat} warm runs per clip")
    print(f"machine check: one bare {MODEL.stem} inference takes {_inference_ms():.1f} ms\n")
    cpu_before = _cpu_ticks()
    cold, results = asyncio.run(_bench(args.repeat))
    steal = _steal_share(cpu_before, _cpu_ticks())
    print(f"yolo filter cold start (create + first clip): {cold:.2f} s\n")
    print(
        f"{'clip':9} {'approach':8} {'median s':>8} {'best s':>7} {'x real':>7} {'decoded':>8} "
        f"{'examined':>9} {'peak MB':>8}  found"
    )
    for name, path in CLIPS.items():
        duration = probe_clip(path).duration_s or 0.0
        ours, plain = results[name]
        for label, runs in (("yolo", ours), ("plain", plain)):
            print(
                f"{name:9} {label:8} {runs.median:8.3f} {min(runs.seconds):7.3f} "
                f"{duration / runs.median:6.1f}x {runs.frames_decoded:8d} "
                f"{runs.frames_examined:9d} {runs.peak_rss_mb:8.0f}  {', '.join(runs.found) or '-'}"
            )
        print(f"{'':9} {'ratio':8} {plain.median / ours.median:7.1f}x faster (medians)\n")
    if steal is not None:
        print(f"CPU time stolen by the hypervisor during the runs: {steal:.0%}")
    print("targets (median): positive < 0.300 s, negative < 1.500 s")
    for name, target in (("positive", 0.3), ("negative", 1.5)):
        median = results[name][0].median
        print(f"  {name}: {median:.3f} s -> {'met' if median < target else 'MISSED'}")


async def _bench(repeat: int) -> tuple[float, dict[str, tuple[Runs, Runs]]]:
    """Both approaches in worker processes, runs interleaved so both see the same load."""
    before = {p.pid for p in multiprocessing.active_children()}
    start = time.perf_counter()
    yolo = YoloFilter.create(YoloFilterConfig(model=str(MODEL), classes=CLASSES))
    await yolo.detect(CLIPS["positive"])
    cold = time.perf_counter() - start
    workers = {p.pid for p in multiprocessing.active_children()} - before
    plain_pool = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_load_plain
    )
    results: dict[str, tuple[Runs, Runs]] = {}
    try:
        plain_pool.submit(_plain_scan, CLIPS["positive"]).result()  # warm-up
        for name, path in CLIPS.items():
            ours, plain = Runs(), Runs()
            for _ in range(repeat):
                start = time.perf_counter()
                result = await yolo.detect(path)
                ours.seconds.append(time.perf_counter() - start)
                seconds, plain.frames_decoded, plain.frames_examined, plain.found = (
                    plain_pool.submit(_plain_scan, path).result()
                )
                plain.seconds.append(seconds)
            ours.frames_decoded = _decoded_frames(path)
            ours.frames_examined, ours.found = result.sampled_frames, result.detected_classes
            ours.peak_rss_mb = max(_peak_rss_mb(pid) for pid in workers)
            plain.peak_rss_mb = plain_pool.submit(_own_peak_rss_mb).result()
            results[name] = (ours, plain)
    finally:
        plain_pool.shutdown()
        await yolo.aclose()
    return cold, results


def _decoded_frames(path: Path) -> int:
    """Frames the filter's scan decodes: the same scan, in this process, with counters."""
    config = YoloFilterConfig(model=str(MODEL), classes=CLASSES)
    request = ScanRequest(
        class_ids=tuple(COCO_INDEX[name] for name in CLASSES),
        min_confidence=config.min_confidence,
        iou_threshold=config.iou_threshold,
        sample_fps=config.sample_fps,
        min_hits=config.min_hits,
        max_frames=config.max_frames,
        draft_decode=config.draft_decode,
        decode_threads=0,
    )
    stats = SamplerStats()
    scan_clip(Detector(MODEL, threads=1), path, request, MODEL.stem, stats)
    return stats.frames_decoded


class _Plain:
    """The plain approach's detector, loaded once in its worker process."""

    detector: Detector | None = None


def _load_plain() -> None:
    _Plain.detector = Detector(MODEL, threads=os.cpu_count() or 1)


def _plain_scan(path: Path) -> tuple[float, int, int, list[str]]:
    """cv2.VideoCapture reads every frame; every 7th goes to the detector; first hit stops."""
    assert _Plain.detector is not None
    class_ids = [COCO_INDEX[name] for name in CLASSES]
    start = time.perf_counter()
    capture = cv2.VideoCapture(str(path))
    decoded = examined = 0
    found: list[str] = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            decoded += 1
            if (decoded - 1) % PLAIN_EVERY:
                continue
            examined += 1
            hits = _Plain.detector.detect(frame, class_ids, min_confidence=0.5)
            if hits:
                found = sorted({CLASSES[class_ids.index(hit.class_id)] for hit in hits})
                break
    finally:
        capture.release()
    return time.perf_counter() - start, decoded, examined, found


def _own_peak_rss_mb() -> float:
    return _peak_rss_mb(os.getpid())


def _inference_ms() -> float:
    """How fast this machine is right now: the bare model on a blank frame."""
    detector = Detector(MODEL, threads=os.cpu_count() or 1)
    blank = np.zeros((detector.input_height, detector.input_width, 3), np.uint8)
    for _ in range(3):
        detector.detect(blank, [0], 0.5)
    start = time.perf_counter()
    for _ in range(20):
        detector.detect(blank, [0], 0.5)
    return (time.perf_counter() - start) / 20 * 1000


def _cpu_ticks() -> list[int] | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return None
    return [int(value) for value in first.split()[1:]]


def _steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    if before is None or after is None or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return spent[7] / max(1, sum(spent[:8]))


def _peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


if __name__ == "__main__":
    main()
