"""Turning a clip's segments into the finished file the pipeline gets.

The segments are MPEG-TS pieces of one continuous recording, so their bytes join into one
stream (FFmpeg's `concat:` protocol), whose packets are copied, not re-encoded, into an MP4
with its index up front (faststart: it plays while it downloads). The copy runs in-process
with PyAV: starting an ffmpeg per clip would cost more CPU than the copy itself. The file is
written under a hidden `.part` name and renamed once it probes as a readable video, so a
clip name never points at half a file. Should the MP4 fail, the joined MPEG-TS itself
becomes the clip (same name, `.ts`): a clip is never lost to a remux problem.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from homesec.models.clip import free_clip_path, parse_clip_id
from homesec.video.clip import VideoReadError, probe_clip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipFile:
    """A finished clip on disk."""

    path: Path
    duration_s: float | None


def assemble_clip(segments: list[Path], target: Path, camera_name: str) -> ClipFile:
    """Join `segments` into the MP4 `target` (a free name that follows the clip_id rule)."""
    part = target.with_name(f".{target.name}.part")
    try:
        _remux(segments, part)
        info = probe_clip(part)
    except (av.FFmpegError, VideoReadError) as exc:
        part.unlink(missing_ok=True)
        logger.error(
            "Cannot make an MP4 of %s (%s); keeping the raw recording",
            target.name,
            exc,
            extra={"camera_name": camera_name, "clip_id": target.name},
        )
        return _joined_ts(segments, _raw_path(target))
    part.replace(target)
    return ClipFile(target, info.duration_s)


def _remux(segments: list[Path], target: Path) -> None:
    joined = "concat:" + "|".join(str(path) for path in segments)
    options = {"movflags": "+faststart"}
    with (
        av.open(joined, format="mpegts") as source,
        av.open(str(target), "w", format="mp4", options=options) as clip,
    ):
        kept = [stream for stream in source.streams if stream.type in ("video", "audio")]
        outputs = {stream.index: clip.add_stream_from_template(stream) for stream in kept}
        # The clip starts at zero, as ffmpeg would make it: the recording's clock does not.
        origin = Fraction(source.start_time or 0, av.time_base)
        for packet in source.demux(kept):
            if packet.dts is None:  # the empty packet at the end only asks to flush
                continue
            shift = round(origin / packet.time_base)
            packet.dts -= shift
            if packet.pts is not None:
                packet.pts -= shift
            packet.stream = outputs[packet.stream.index]
            clip.mux(packet)


def _raw_path(target: Path) -> Path:
    raw = target.with_suffix(".ts")
    name = parse_clip_id(target.name)
    if not raw.exists() or name is None:
        return raw
    return free_clip_path(target.parent, name.camera_name, name.unix_seconds, ".ts")


def _joined_ts(segments: list[Path], target: Path) -> ClipFile:
    part = target.with_name(f".{target.name}.part")
    with part.open("wb") as joined:
        for segment in segments:
            with segment.open("rb") as piece:
                shutil.copyfileobj(piece, joined)
    part.replace(target)
    return ClipFile(target, None)
