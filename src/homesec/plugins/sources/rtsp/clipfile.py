"""Turning a clip's segments into the finished file the pipeline gets.

The segments are MPEG-TS pieces of one continuous recording, so their bytes join into one
stream (ffmpeg's `concat:` protocol) that is copied, not re-encoded, into an MP4 with its
index up front (faststart: it plays while it downloads). The file is written under a hidden
`.part` name and renamed when it probes as a readable video, so a clip name never points at
half a file. Should the MP4 fail, the joined MPEG-TS itself becomes the clip: a clip is
never lost to a remux problem.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from homesec.models.clip import free_clip_path
from homesec.video.clip import VideoReadError, probe_clip
from homesec.video.ffmpeg import FfmpegError, run_ffmpeg

logger = logging.getLogger(__name__)

# Copying is disk-bound: even an hour of 4K passes in well under this.
_REMUX_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ClipFile:
    """A finished clip on disk."""

    path: Path
    duration_s: float | None


def assemble_clip(
    segments: list[Path], directory: Path, camera_name: str, start_s: float
) -> ClipFile:
    """Join `segments` into `directory`, named by the clip_id rule for `start_s`."""
    target = free_clip_path(directory, camera_name, int(start_s), ".mp4")
    part = directory / f".{target.name}.part"
    try:
        run_ffmpeg(
            [
                "-i",
                "concat:" + "|".join(str(path) for path in segments),
                "-map",
                "0",
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
                "-y",
                str(part),
            ],
            timeout_s=_REMUX_TIMEOUT_S,
        )
        info = probe_clip(part)
    except (FfmpegError, VideoReadError) as exc:
        part.unlink(missing_ok=True)
        logger.error(
            "Cannot make an MP4 of %s (%s); keeping the raw recording",
            target.name,
            exc,
            extra={"camera_name": camera_name, "clip_id": target.name},
        )
        return _joined_ts(segments, directory, camera_name, start_s)
    part.replace(target)
    return ClipFile(target, info.duration_s)


def _joined_ts(segments: list[Path], directory: Path, camera_name: str, start_s: float) -> ClipFile:
    target = free_clip_path(directory, camera_name, int(start_s), ".ts")
    part = directory / f".{target.name}.part"
    with part.open("wb") as joined:
        for segment in segments:
            with segment.open("rb") as piece:
                shutil.copyfileobj(piece, joined)
    part.replace(target)
    return ClipFile(target, None)
