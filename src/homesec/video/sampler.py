"""The one frame sampler: a clip's frames at a chosen rate or moments, scaled for whoever looks.

The object filter takes a frame every half second at its detector's input size
(`sample_frames`), the VLM frame picker a few chosen moments, most of them keyframes
(`keyframe_times`, `sample_moments`), the snapshot maker one frame. Reading is made for small
CPUs:

- Only what sampling needs is decoded. Packets of a group of pictures that ends before the
  next wanted time never reach the decoder (decoding restarts at the keyframe before that
  time), and non-reference frames are dropped by the decoder itself when sampling is much
  slower than the clip's frame rate. Keyframes wanted for themselves are decoded alone.
- FFmpeg decodes with its own threads; each kept frame is scaled and converted to RGB/BGR in
  one swscale pass, straight to the caller's size. Dropped frames are never converted.
- A consumer stops early by leaving the loop; the file is closed at once.

Damaged clips: a few undecodable packets are skipped (camera streams glitch), but a clip
where many fail, where nothing decodes, or that ends well before its declared duration
raises `VideoReadError`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, NamedTuple, cast

import av
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from numpy.typing import NDArray

from homesec.video.clip import (
    ClipInfo,
    VideoReadError,
    clip_info,
    open_video,
    stream_start_s,
)
from homesec.video.decoding import GopReader, KeyframeReader, SamplerStats, Schedule

PixelFormat = Literal["bgr24", "rgb24"]

# A clip whose packets stop this much before its declared end is reported as truncated.
_TRUNCATION_SLACK_S = 1.0
_TRUNCATION_SLACK_SHARE = 0.05
# Frame rate assumed for a stream that declares none.
_FALLBACK_FPS = 25.0
# Sampling this many source frames apart or more lets the decoder drop non-reference frames.
_SKIP_NONREF_FROM_FRAMES = 3


class SampledFrame(NamedTuple):
    time_s: float
    """Seconds from the start of the clip."""
    image: NDArray[np.uint8]
    """Height x width x 3, in the requested pixel format."""
    source_size: tuple[int, int]
    """Width and height of the decoded picture, before scaling."""


def sample_frames(
    path: Path,
    *,
    fps: float = 2.0,
    max_frames: int | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    fit: tuple[int, int] | None = None,
    pixel_format: PixelFormat = "bgr24",
    draft: bool = False,
    threads: int = 0,
    stats: SamplerStats | None = None,
) -> Generator[SampledFrame, None, None]:
    """Yield one frame every `1 / fps` seconds of the clip, from `start_s` to `end_s`.

    `max_frames` caps the count; when the clip's duration is known the frames are then
    spread over the whole span instead of stopping early. `fit` (width, height) scales each
    frame down, keeping its aspect ratio, to fit inside that box (never up). `draft` skips
    H.264/HEVC deblocking: faster, slightly blockier pictures, fine for a detector, not for
    a person. `threads` is FFmpeg's decoding thread count (0: one per core).
    Raises `VideoReadError` when the clip cannot be read.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    stats = stats if stats is not None else SamplerStats()
    with open_video(path) as (container, stream):
        info = clip_info(container, stream)
        end = info.duration_s
        if end_s is not None:
            end = end_s if end is None else min(end, end_s)
        interval = 1.0 / fps
        if max_frames is not None and end is not None and (end - start_s) / interval > max_frames:
            interval = (end - start_s) / max_frames
        slots = range(max_frames) if max_frames is not None else itertools.count()
        schedule = Schedule((start_s + k * interval for k in slots), end, _frame_gap(info))
        _configure(stream, draft=draft, threads=threads, skip_nonref=_sparse(info.fps, interval))
        reader = GopReader(stream.codec_context, stats, path)
        picture = _Picture(fit, pixel_format, info.fps or _FALLBACK_FPS, stream.time_base)
        yield from _sampled(container, stream, schedule, reader, picture, stats, path)


def sample_moments(
    path: Path,
    moments_s: Sequence[float],
    *,
    keyframes_only: bool = False,
    fit: tuple[int, int] | None = None,
    pixel_format: PixelFormat = "bgr24",
    threads: int = 0,
    stats: SamplerStats | None = None,
) -> Generator[SampledFrame, None, None]:
    """Yield the frame at each of `moments_s` (seconds from the clip start), in time order.

    Each moment gets the first frame at or after it, decoded from the keyframe before it, in
    one pass over the clip. `keyframes_only` sends the decoder nothing but the keyframes
    wanted, each on its own: a moment then gets the first keyframe at or after it, so give it
    times from `keyframe_times`. Moments past the end of the clip get no frame; `fit`,
    `pixel_format`, `threads` and the errors are those of `sample_frames`.
    """
    moments = sorted(moments_s)
    stats = stats if stats is not None else SamplerStats()
    with open_video(path) as (container, stream):
        info = clip_info(container, stream)
        schedule = Schedule(moments, info.duration_s, _frame_gap(info))
        closest = min((b - a for a, b in itertools.pairwise(moments)), default=math.inf)
        _configure(stream, draft=False, threads=threads, skip_nonref=_sparse(info.fps, closest))
        reader_kind = KeyframeReader if keyframes_only else GopReader
        reader = reader_kind(stream.codec_context, stats, path)
        picture = _Picture(fit, pixel_format, info.fps or _FALLBACK_FPS, stream.time_base)
        yield from _sampled(container, stream, schedule, reader, picture, stats, path)


def keyframe_times(path: Path) -> list[float]:
    """When the clip's keyframes are (seconds from its start), read from its packets alone.

    Nothing is decoded. Keyframes without a timestamp are left out. Raises `VideoReadError`
    when the clip cannot be read.
    """
    with open_video(path) as (container, stream):
        time_base = stream.time_base
        if time_base is None:
            return []
        origin = stream_start_s(stream)
        return sorted(
            float(packet.pts * time_base) - origin
            for packet in _demux(container, stream, path)
            if packet.is_keyframe and packet.pts is not None
        )


def _frame_gap(info: ClipInfo) -> float:
    """Half the time between two frames: how far off a frame may be and still fill a time."""
    return 0.5 / info.fps if info.fps else 0.001


def _sparse(source_fps: float | None, interval: float) -> bool:
    return source_fps is not None and interval * source_fps >= _SKIP_NONREF_FROM_FRAMES


def _configure(stream: VideoStream, *, draft: bool, threads: int, skip_nonref: bool) -> None:
    context = stream.codec_context
    stream.thread_type = "AUTO"
    context.thread_count = threads
    if skip_nonref:
        # No other frame depends on a non-reference frame: dropping it costs nothing.
        context.skip_frame = "NONREF"
    if draft:
        context.options = {**context.options, "skip_loop_filter": "all"}


def _sampled(
    container: InputContainer,
    stream: VideoStream,
    schedule: Schedule,
    reader: GopReader,
    picture: _Picture,
    stats: SamplerStats,
    path: Path,
) -> Iterator[SampledFrame]:
    if schedule.done:
        return
    time_base = stream.time_base
    origin = stream_start_s(stream)
    packets = _demux(container, stream, path)
    if schedule.next_s > 0 and time_base is not None:
        packets = _seek(container, stream, int((schedule.next_s + origin) / time_base), path)
    last_packet_s: float | None = None  # None: the packets carry no timestamps
    for packet in packets:
        stats.packets_read += 1
        packet_s = None
        if packet.pts is not None and time_base is not None:
            packet_s = float(packet.pts * time_base) - origin
            last_packet_s = max(last_packet_s or 0.0, packet_s)
        for frame in reader.feed(packet, packet_s, schedule):
            if (sampled := picture.keep(frame, origin, schedule, stats)) is not None:
                yield sampled
        if schedule.done:
            return
    for frame in reader.drain():
        if (sampled := picture.keep(frame, origin, schedule, stats)) is not None:
            yield sampled
    _check_complete(stats, schedule, last_packet_s, path)


def _seek(
    container: InputContainer, stream: VideoStream, pts: int, path: Path
) -> Iterator[Packet[VideoStream]]:
    """The packets from the keyframe at or before `pts` on.

    A demuxer without an index (MPEG-TS: a camera's recording) may land past that keyframe,
    in a group of pictures that cannot be decoded from there; the packets then come from the
    start instead (the reader skips those it does not need).
    """
    container.seek(pts, stream=stream, backward=True)
    packets = _demux(container, stream, path)
    first = next(packets, None)
    if first is None or first.is_keyframe:
        return itertools.chain([first] if first else [], packets)
    container.seek(0)
    return _demux(container, stream, path)


def _demux(
    container: InputContainer, stream: VideoStream, path: Path
) -> Iterator[Packet[VideoStream]]:
    try:
        for packet in container.demux(stream):
            if packet.size:  # the empty packet at the end only asks to flush
                yield packet
    except av.FFmpegError as exc:
        raise VideoReadError(f"{path}: the file is damaged ({exc.strerror})") from exc


@dataclass(frozen=True)
class _Picture:
    """How sampled frames are handed over: size box, pixel format, time of unstamped frames."""

    fit: tuple[int, int] | None
    pixel_format: PixelFormat
    source_fps: float
    time_base: Fraction | None

    def keep(
        self, frame: VideoFrame, origin: float, schedule: Schedule, stats: SamplerStats
    ) -> SampledFrame | None:
        if schedule.done:
            return None
        if frame.pts is not None and self.time_base is not None:
            # From pts, not `frame.time`: PyAV loses the time base of flushed frames.
            time_s = max(0.0, float(frame.pts * self.time_base) - origin)
        else:  # no timestamps: count frames (nothing is skipped without timestamps)
            time_s = (stats.frames_decoded - 1) / self.source_fps
        if not schedule.wants(time_s):
            return None
        schedule.take(time_s)
        stats.frames_sampled += 1
        width, height = self._fitted(frame.width, frame.height)
        # AREA averages the pixels it drops: no aliasing on the way from 1080p to 416.
        scaled = frame.reformat(
            width=width, height=height, format=self.pixel_format, interpolation="AREA"
        )
        # rgb24/bgr24 always come out as uint8; the stub's union covers every format.
        image = cast(NDArray[np.uint8], scaled.to_ndarray())
        return SampledFrame(time_s, image, (frame.width, frame.height))

    def _fitted(self, width: int, height: int) -> tuple[int, int]:
        if self.fit is None:
            return width, height
        scale = min(self.fit[0] / width, self.fit[1] / height, 1.0)
        return max(1, round(width * scale)), max(1, round(height * scale))


def _check_complete(
    stats: SamplerStats, schedule: Schedule, last_packet_s: float | None, path: Path
) -> None:
    if stats.frames_sampled == 0 and stats.packets_read > 0:
        raise VideoReadError(f"{path}: no video frame could be decoded")
    if stats.packets_read == 0:
        raise VideoReadError(f"{path}: the video stream holds no frames")
    end = schedule.end
    if end is None or last_packet_s is None:
        return
    slack = max(_TRUNCATION_SLACK_S, _TRUNCATION_SLACK_SHARE * end)
    if last_packet_s < end - slack:
        raise VideoReadError(
            f"{path}: the clip is truncated (its frames stop at {last_packet_s:.1f} s "
            f"of a declared {end:.1f} s)"
        )
