"""A finalized clip and the clip_id naming rule (`{camera}_{unix_seconds}[_{n}].{ext}`)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from homesec.models.results import FilterResult

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".mov", ".avi", ".ts", ".m4v", ".webm"})

_CLIP_ID_RE = re.compile(
    r"^(?P<camera>.+)_(?P<ts>\d{9,11})(?:_(?P<n>[2-9]|[1-9]\d+))?(?P<ext>\.\w+)$"
)
_CAMERA_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Clip(BaseModel):
    """A finalized video clip on local disk, ready for the pipeline."""

    model_config = ConfigDict(frozen=True)

    clip_id: str
    camera_name: str
    local_path: Path
    start_ts: datetime
    end_ts: datetime
    duration_s: float
    source_backend: str
    source_detections: FilterResult | None = None
    """What the source's own detector saw (an NVR's): the pipeline's filter does not run."""


class LiveSegment(BaseModel):
    """A finished piece of a clip that is still being recorded: a small video file of its own.

    It may vanish once the clip is finalized (its pieces are joined, then removed).
    """

    model_config = ConfigDict(frozen=True)

    camera_name: str
    clip_path: Path
    """Where the clip will be written: its name, the clip_id, is fixed when recording starts."""
    path: Path
    start_ts: datetime

    @property
    def clip_id(self) -> str:
        return self.clip_path.name


class ClipName(BaseModel):
    """The parts of a clip_id."""

    model_config = ConfigDict(frozen=True)

    camera_name: str
    unix_seconds: int
    n: int
    extension: str


def is_valid_camera_name(name: str) -> bool:
    """Camera names become file names, MQTT topics and storage keys: keep them plain."""
    return bool(_CAMERA_NAME_RE.match(name))


def clip_id_for(camera_name: str, unix_seconds: int, n: int = 1, extension: str = ".mp4") -> str:
    """The clip_id of the n-th clip of a camera in one second (n=1 has no suffix)."""
    suffix = "" if n == 1 else f"_{n}"
    return f"{camera_name}_{unix_seconds}{suffix}{extension.lower()}"


def parse_clip_id(clip_id: str, camera_name: str | None = None) -> ClipName | None:
    """Split a clip_id into its parts; None when it does not follow the rule."""
    match = _CLIP_ID_RE.match(clip_id)
    if match is None or match["ext"].lower() not in VIDEO_EXTENSIONS:
        return None
    if camera_name is not None and match["camera"] != camera_name:
        return None
    return ClipName(
        camera_name=match["camera"],
        unix_seconds=int(match["ts"]),
        n=int(match["n"] or 1),
        extension=match["ext"].lower(),
    )


def free_clip_path(directory: Path, camera_name: str, unix_seconds: int, extension: str) -> Path:
    """The first clip path in `directory` not taken yet: `_2`, `_3`... on collision.

    Only when the service's `ClipNamer` cannot be asked (it knows far more than a folder).
    """
    n = 1
    while True:
        candidate = directory / clip_id_for(camera_name, unix_seconds, n, extension)
        if not candidate.exists():
            return candidate
        n += 1


def snapshot_name(clip_id: str) -> str:
    """The clip's alert snapshot (JPEG), kept next to the clip locally and in storage."""
    return f"{Path(clip_id).stem}.snapshot.jpg"


def analysis_name(clip_id: str) -> str:
    """The clip's VLM analysis (JSON), kept next to the clip in storage."""
    return f"{Path(clip_id).stem}.analysis.json"
