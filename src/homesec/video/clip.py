"""What a clip file holds (duration, frame rate, picture size), read from its headers.

Also the one error every clip reader raises, `VideoReadError`, whose message says what is
wrong with the file (missing, empty, not a video, truncated, undecodable).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
from av.container import InputContainer
from av.video.stream import VideoStream

# Opening a clip probes its streams, and FFmpeg's probe decodes the first frames (about a
# keyframe's work: 20 ms for 1080p H.264 on a small CPU) to learn what MP4, MOV, MPEG-TS, AVI
# and FLV headers already say; every reader opens the clip, the VLM frame picker several
# times. The probe's decoder (not the one that reads the frames) skips every frame, and a
# container that then leaves the stream's start unknown (Matroska) is probed in full.
_HEADER_PROBE = {"skip_frame": "all"}


class VideoReadError(Exception):
    """A clip cannot be read. Carries only its message, so it crosses process boundaries."""


@dataclass(frozen=True)
class ClipInfo:
    """A clip's video stream as its container describes it (nothing decoded)."""

    width: int
    height: int
    fps: float | None
    duration_s: float | None
    frame_count: int | None
    codec: str


def probe_clip(path: Path) -> ClipInfo:
    """Describe the clip's first video stream; raises `VideoReadError` if it has none."""
    with open_video(path) as (container, stream):
        return clip_info(container, stream)


@contextmanager
def open_video(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Open a clip and its first video stream, closing the file on exit."""
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: the file is empty")
    container = _open(path, _HEADER_PROBE)
    if container.streams.video and container.streams.video[0].start_time is None:
        container.close()
        container = _open(path, None)
    try:
        if not container.streams.video:
            raise VideoReadError(f"{path}: the file has no video stream")
        yield container, container.streams.video[0]
    finally:
        container.close()


def _open(path: Path, options: dict[str, str] | None) -> InputContainer:
    try:
        return av.open(str(path), mode="r", options=options)
    except av.FFmpegError as exc:
        raise VideoReadError(f"{path}: not a readable video file ({_reason(exc)})") from exc


def clip_info(container: InputContainer, stream: VideoStream) -> ClipInfo:
    rate = stream.average_rate or stream.guessed_rate
    return ClipInfo(
        width=stream.width,
        height=stream.height,
        fps=float(rate) if rate else None,
        duration_s=_duration_s(container, stream),
        frame_count=stream.frames or None,
        codec=stream.codec_context.name,
    )


def stream_start_s(stream: VideoStream) -> float:
    """Time of the stream's first frame: clip timestamps are counted from it."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _duration_s(container: InputContainer, stream: VideoStream) -> float | None:
    # The video stream's own duration first: an audio track may run longer.
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _reason(exc: av.FFmpegError) -> str:
    return exc.strerror or type(exc).__name__
