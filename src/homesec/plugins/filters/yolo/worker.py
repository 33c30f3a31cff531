"""The filter's worker processes: each loads the model once, then scans clips on request.

Only picklable values cross the process boundary: paths as strings, a `ScanRequest` in,
a `FilterResult` or an exception that carries only its message out.
"""

from __future__ import annotations

import signal
from pathlib import Path

from homesec.models.results import FilterResult
from homesec.plugins.filters.yolo.model import Detector
from homesec.plugins.filters.yolo.scan import ScanRequest, scan_clip


class _Loaded:
    """This process's detector, set by `load_model` (the pool initializer)."""

    detector: Detector | None = None
    model_name: str = ""


def load_model(
    model_path: str, model_name: str, providers: tuple[str, ...], threads: int, input_size: int
) -> None:
    """Pool initializer: load the model once for every clip this process will scan."""
    # Ctrl-C reaches the whole process group; the parent decides how to stop the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _Loaded.detector = Detector(
        Path(model_path), providers=providers, threads=threads, input_size=input_size
    )
    _Loaded.model_name = model_name


def ready() -> list[str]:
    """The providers in use. Submitting it starts a worker, loading the model, ahead of clips."""
    return _Loaded.detector.providers if _Loaded.detector is not None else []


def scan(video_path: str, request: ScanRequest) -> FilterResult:
    """Scan one clip with this process's detector."""
    if _Loaded.detector is None:
        raise RuntimeError("the filter worker has no model loaded")
    return scan_clip(_Loaded.detector, Path(video_path), request, _Loaded.model_name)
