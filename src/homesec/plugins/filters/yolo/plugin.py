"""The `yolo` object filter: a YOLO-family ONNX model over sampled frames, in worker processes.

`create` resolves and checks the model at start-up (a missing or unusable model fails
there, with what to do about it) and starts the worker pool; each worker loads the model
once. `detect` sends the clip to a worker, so the event loop never waits on decoding or
inference. Every failure reaches the caller as a `YoloFilterError` that keeps its cause.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Literal

import onnxruntime as ort
from pydantic import Field, field_validator

from homesec.errors import CausedError
from homesec.interfaces import PluginConfig
from homesec.models.config import FolderPath
from homesec.models.enums import PluginType
from homesec.models.results import FilterOverrides, FilterResult
from homesec.plugins.filters.yolo import worker
from homesec.plugins.filters.yolo.coco import COCO_CLASSES, COCO_INDEX
from homesec.plugins.filters.yolo.model import Detector, ModelFormatError
from homesec.plugins.filters.yolo.models_cache import (
    DEFAULT_CACHE_DIR,
    OFFICIAL_RELEASE_URL,
    ModelUnavailableError,
    resolve_model,
)
from homesec.plugins.filters.yolo.scan import ScanRequest
from homesec.plugins.registry import plugin
from homesec.processes import worker_pool
from homesec.video.clip import VideoReadError

logger = logging.getLogger(__name__)

Provider = Literal["cpu", "cuda", "openvino", "coreml"]
_MAX_DEFAULT_THREADS = 4
_ORT_PROVIDERS: dict[Provider, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


class YoloFilterConfig(PluginConfig):
    """Config of the `yolo` filter."""

    model: str = Field(
        default="yolox_nano",
        description="Path to an .onnx file, or a model name: yolox_nano, yolox_tiny and "
        "yolox_s are downloaded once from the official YOLOX release when missing",
    )
    classes: list[str] = Field(
        default_factory=lambda: ["person"],
        min_length=1,
        description="COCO class names to look for",
    )
    min_confidence: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Lowest score that counts as a detection"
    )
    iou_threshold: float = Field(
        default=0.45,
        gt=0.0,
        le=1.0,
        description="Non-maximum suppression: boxes of one class overlapping more are merged",
    )
    sample_fps: float = Field(
        default=2.0, gt=0.0, le=60.0, description="Frames examined per second of video"
    )
    min_hits: int = Field(
        default=1,
        ge=1,
        description="Sampled frames a class must be seen in to count; the scan stops there",
    )
    max_frames: int | None = Field(
        default=None,
        ge=1,
        description="Most frames examined per clip; spread over the whole clip (null: no cap)",
    )
    input_size: int = Field(
        default=640,
        ge=32,
        multiple_of=32,
        description="Input side for models with a dynamic input size (fixed sizes win)",
    )
    max_workers: int = Field(default=1, ge=1, description="Worker processes (clips at once)")
    threads: int = Field(
        default=0,
        ge=0,
        description="ONNX Runtime threads per worker (0: its share of the cores less the one "
        "left to decoding, at most 4)",
    )
    decode_threads: int = Field(
        default=0, ge=0, description="Video decoding threads per worker (0: cores / max_workers)"
    )
    draft_decode: bool = Field(
        default=True,
        description="Skip the H.264/HEVC deblocking filter: faster decoding, slightly blockier "
        "frames, no measurable effect on detection",
    )
    providers: list[Provider] = Field(
        default_factory=lambda: list[Provider](["cpu"]),
        min_length=1,
        description="ONNX Runtime execution providers by preference (cpu, cuda, openvino, "
        "coreml); one not installed is skipped with a warning, cpu is always the last resort",
    )
    cache_dir: FolderPath = Field(
        default=DEFAULT_CACHE_DIR, description="Where downloaded models are kept"
    )
    release_url: str = Field(
        default=OFFICIAL_RELEASE_URL,
        description="Base URL that named models are downloaded from (a mirror, for example)",
    )
    model_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 the model file must have; by default downloads are checked "
        "against the pinned digest of the official release file",
    )
    allow_download: bool = Field(
        default=True, description="Download a named model that is not on disk"
    )

    @field_validator("classes")
    @classmethod
    def _coco_classes(cls, classes: list[str]) -> list[str]:
        _check_classes(classes)
        return list(dict.fromkeys(classes))


class YoloFilterError(CausedError):
    """A clip could not be checked; `cause` (also `__cause__`) says why."""


@plugin(PluginType.FILTER, "yolo", config=YoloFilterConfig)
class YoloFilter:
    """Object filter on a YOLO-family ONNX model, run in a pool of worker processes."""

    def __init__(self, config: YoloFilterConfig, model_path: Path, providers: list[str]) -> None:
        self._config = config
        self._model_path = model_path
        self._providers = providers
        share = max(1, _usable_cores() // config.max_workers)
        # Frames are decoded while the detector runs (prefetch), so the decoder keeps a core
        # of the worker's share; models this small gain little from more than 4 threads.
        self._threads = config.threads or max(1, min(_MAX_DEFAULT_THREADS, share - 1))
        self._decode_threads = config.decode_threads or share
        self._pool: ProcessPoolExecutor | None = self._start_pool()

    @classmethod
    def create(cls, config: YoloFilterConfig) -> YoloFilter:
        """Resolve and check the model, then start the workers. Raises `PluginError`."""
        path = resolve_model(
            config.model,
            cache_dir=config.cache_dir,
            release_url=config.release_url,
            allow_download=config.allow_download,
            sha256=config.model_sha256,
        )
        try:
            # Fails here, at start-up, rather than in every worker on the first clip.
            Detector(path, threads=1, input_size=config.input_size)
        except ModelFormatError as exc:
            raise ModelUnavailableError(f"model {config.model!r}: {exc}", cause=exc) from exc
        return cls(config, path, _session_providers(config.providers))

    @property
    def model_name(self) -> str:
        """The name results carry: the model file's stem."""
        return self._model_path.stem

    async def detect(
        self, video_path: Path, overrides: FilterOverrides | None = None
    ) -> FilterResult:
        request = self._request(overrides)
        pool = self._pool
        if pool is None:
            raise YoloFilterError("the yolo filter is shut down")
        if not request.class_ids:  # overrides asked for no class: nothing to look at
            return FilterResult(
                detected_classes=[], confidence=0.0, sampled_frames=0, model=self.model_name
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, worker.scan, str(video_path), request)
        except VideoReadError as exc:
            raise YoloFilterError(f"cannot read the clip: {exc}", cause=exc) from exc
        except BrokenProcessPool as exc:
            self._replace_pool(pool)
            raise YoloFilterError(
                f"the detector process died while checking {video_path.name}; restarted it",
                cause=exc,
            ) from exc
        except Exception as exc:
            raise YoloFilterError(
                f"detection failed on {video_path.name}: {exc}", cause=exc
            ) from exc

    async def start(self) -> None:
        """Nothing to start: `create` has started the worker pool."""

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _request(self, overrides: FilterOverrides | None) -> ScanRequest:
        overrides = overrides or FilterOverrides()
        changed = overrides.model_dump(exclude_none=True, exclude={"zones", "full_scan"})
        config = self._config.model_copy(update=changed)
        try:
            _check_classes(config.classes)
        except ValueError as exc:
            raise YoloFilterError(f"bad filter overrides: {exc}", cause=exc) from exc
        return ScanRequest(
            class_ids=tuple(dict.fromkeys(COCO_INDEX[name] for name in config.classes)),
            min_confidence=config.min_confidence,
            iou_threshold=config.iou_threshold,
            sample_fps=config.sample_fps,
            min_hits=config.min_hits,
            max_frames=config.max_frames,
            draft_decode=config.draft_decode,
            decode_threads=self._decode_threads,
            zones=overrides.zones or {},
            full_scan=bool(overrides.full_scan),
        )

    def _start_pool(self) -> ProcessPoolExecutor:
        pool = worker_pool(
            self._config.max_workers,
            worker.load_model,
            (
                str(self._model_path),
                self.model_name,
                tuple(self._providers),
                self._threads,
                self._config.input_size,
            ),
        )
        # Start a worker and load the model now, not on the first clip.
        pool.submit(worker.ready).add_done_callback(self._log_ready)
        return pool

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is not broken:  # another call already replaced it
            return
        broken.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start_pool()

    def _log_ready(self, future: Future[list[str]]) -> None:
        if future.cancelled():
            return
        if (error := future.exception()) is not None:
            logger.error("yolo filter worker failed to start: %s", error)
            return
        used = future.result()
        if used and used[0] != self._providers[0]:
            logger.warning(
                "yolo filter runs on %s: %s could not be used", used[0], self._providers[0]
            )
        logger.info("yolo filter ready: model %s on %s", self.model_name, ", ".join(used))


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on (cgroups, taskset)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_classes(classes: list[str]) -> None:
    unknown = [name for name in classes if name not in COCO_INDEX]
    if unknown:
        raise ValueError(
            f"unknown class {', '.join(map(repr, unknown))}; the model knows the 80 COCO "
            f"classes: {', '.join(COCO_CLASSES)}"
        )


def _session_providers(wanted: list[Provider]) -> list[str]:
    available = set(ort.get_available_providers())
    chosen = [_ORT_PROVIDERS[name] for name in dict.fromkeys([*wanted, "cpu"])]
    for provider in chosen:
        if provider not in available:
            logger.warning(
                "ONNX Runtime execution provider %s is not installed; skipping it (install "
                "the onnxruntime build that ships it, e.g. onnxruntime-gpu for cuda)",
                provider,
            )
    return [provider for provider in chosen if provider in available]
