"""One connection to a camera: a single ffmpeg that both records and feeds motion detection.

The process reads the main stream (and the detect sub-stream, when there is one) and writes:

- the main stream, copied without re-encoding, as MPEG-TS segments of about a second (the
  recorder's rolling buffer), each finished one announced as a CSV line on an inherited pipe;
- the detect stream, decoded (in hardware when asked) and reduced to `fps` grayscale frames
  `width` pixels wide, as PGM images on stdout (each carries its size, so a camera that
  changes resolution mid-stream is no problem).

One process per connection means one RTSP session on the main stream (cameras allow few),
one thing to watch, and recording and detection ending together when the camera goes away.
Two threads read its outputs; motion detection runs in the frame thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np

from homesec.plugins.sources.rtsp.motion import GrayFrame
from homesec.plugins.sources.rtsp.recorder import SEGMENT_SUFFIX, Segment
from homesec.video.ffmpeg import FfmpegProcess

logger = logging.getLogger(__name__)

# Segments are cut at the first keyframe after this many seconds: the pre-roll's precision.
SEGMENT_S = 1
_LUMA_FIRST_FORMATS = "yuv420p|yuvj420p|nv12|yuv422p|yuvj422p|yuv444p|yuvj444p|gray"


@dataclass(frozen=True)
class StreamSpec:
    """What one connection reads and writes."""

    main_url: str
    detect_url: str | None
    transport: str
    width: int
    fps: float
    hwaccel: str | None
    audio: str
    segments_dir: Path
    prefix: str
    """Segment file names start with it: each connection has its own."""
    io_timeout_s: float


def rtsp_input_args(transport: str, timeout_s: float) -> list[str]:
    """How ffmpeg opens a camera's stream: transport, and the I/O timeout it gives up after."""
    return ["-rtsp_transport", transport, "-timeout", str(int(timeout_s * 1_000_000))]  # µs


def ffmpeg_args(spec: StreamSpec, list_fd: int) -> list[str]:
    """The ffmpeg arguments of a connection, segment announcements going to `list_fd`."""
    # The stream's parameters are known within a second (5 s by default: slow starts).
    network = [*rtsp_input_args(spec.transport, spec.io_timeout_s), "-analyzeduration", "1000000"]
    # A sub-stream is small: one decoding thread is cheaper than several, and adds no delay.
    # Deblocking only makes pictures prettier; motion detection does not need it.
    decoding = ["-threads", "1" if spec.detect_url else "2", "-skip_loop_filter", "all"]
    if spec.hwaccel is not None:
        decoding += ["-hwaccel", spec.hwaccel]
    if spec.detect_url is None:
        inputs = [*network, *decoding, "-i", spec.main_url]
        detect_input = 0
    else:
        inputs = [*network, "-i", spec.main_url, *network, *decoding, "-i", spec.detect_url]
        detect_input = 1
    # ffmpeg reads '%' in the file name as a pattern: the folder's own must be escaped.
    folder = str(spec.segments_dir).replace("%", "%%")
    recording = [
        *["-map", "0:v:0", "-c:v", "copy", *_audio_args(spec.audio)],
        *["-f", "segment", "-segment_time", str(SEGMENT_S), "-segment_format", "mpegts"],
        *["-reset_timestamps", "0", "-segment_list", f"pipe:{list_fd}"],
        *["-segment_list_type", "csv", f"{folder}/{spec.prefix}%06d{SEGMENT_SUFFIX}"],
    ]
    # Gray is the luma plane, taken as is (swscale's conversion to gray costs more than
    # decoding); planar and semi-planar YUV keep it apart, other formats are converted.
    scale = (
        f"fps={spec.fps:g},scale=w='min({spec.width},iw)':h=-2,"
        f"format={_LUMA_FIRST_FORMATS},extractplanes=y"
    )
    detection = ["-map", f"{detect_input}:v:0", "-an", "-sn", "-dn", "-vf", scale]
    return [*inputs, *recording, *detection, "-c:v", "pgm", "-f", "image2pipe", "pipe:1"]


def _audio_args(audio: str) -> list[str]:
    match audio:
        case "off":
            return ["-an"]
        case "copy":
            return ["-map", "0:a:0?", "-c:a", "copy"]
        case _:
            return ["-map", "0:a:0?", "-c:a", "aac"]


class CameraStream:
    """One connection: start it, watch `frames`/`last_frame_at`, stop it (always reaped).

    `last_frame_at` and `last_segment_at` (unix seconds) are the start time until the first.
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        on_frame: Callable[[GrayFrame, float], None],
        on_segment: Callable[[Segment], None],
        name: str,
        log_extra: Mapping[str, object],
    ) -> None:
        self._spec = spec
        self._on_frame = on_frame
        self._on_segment = on_segment
        self._name = name
        self._log_extra = log_extra
        self._process: FfmpegProcess | None = None
        self._threads: list[threading.Thread] = []
        self._announced: set[str] = set()
        self.frames = 0
        self.last_frame_at = 0.0
        self.last_segment_at = 0.0

    def start(self) -> None:
        """Start ffmpeg and its readers (raises `FfmpegError` when it cannot run)."""
        read_fd, write_fd = os.pipe()
        try:
            self._process = FfmpegProcess.start(
                ffmpeg_args(self._spec, write_fd),
                name=self._name,
                stdout=True,
                pass_fds=(write_fd,),
                log_extra=self._log_extra,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child has its copy: EOF comes when ffmpeg ends
        self.last_frame_at = self.last_segment_at = time.time()
        announcements = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        self._threads = [
            threading.Thread(target=read, name=f"{self._name}:{what}", daemon=True)
            for what, read in (
                ("frames", partial(self._read_frames, self._process.stdout)),
                ("segments", partial(self._read_segments, announcements)),
            )
        ]
        for thread in self._threads:
            thread.start()

    @property
    def ended(self) -> bool:
        return self._process is None or self._process.poll() is not None

    def failure(self) -> str:
        """Why ffmpeg ended, in its own (redacted) words."""
        if self._process is None:
            return "not started"
        return self._process.error_output() or f"exit code {self._process.poll()}"

    def stop(self, grace_s: float) -> None:
        """Stop ffmpeg (it finishes the current segment unless killed after `grace_s`), drain
        the readers, reap it."""
        if self._process is None:
            return
        self._process.stop(grace_s)
        for thread in self._threads:
            thread.join()
        self._announce_leftovers()

    def _read_frames(self, pipe: IO[bytes]) -> None:
        with pipe:
            while (frame := _read_pgm(pipe)) is not None:
                now = time.time()
                self.frames += 1
                self.last_frame_at = now
                try:
                    self._on_frame(frame, now)
                except Exception:
                    # Stop reading: ffmpeg then blocks, the stall is seen and it reconnects.
                    logger.exception("Motion detection failed", extra=self._log_extra)
                    return

    def _read_segments(self, pipe: IO[str]) -> None:
        with pipe:
            for line in pipe:
                # "name,start,end" in stream seconds; it is written as the segment closes.
                now = time.time()
                try:
                    name, start, end = line.strip().rsplit(",", 2)
                    self._announce(Path(name).name, now - (float(end) - float(start)), now)
                except (ValueError, OSError):
                    # One bad segment must not end the recording: log it, take the next.
                    logger.exception("Cannot take segment %r", line, extra=self._log_extra)

    def _announce(self, name: str, start: float, end: float) -> None:
        self._announced.add(name)
        self.last_segment_at = end
        self._on_segment(Segment(self._spec.segments_dir / name, start, end))

    def _announce_leftovers(self) -> None:
        # A killed ffmpeg leaves its last segment unannounced; it holds the end of the clip.
        pattern = f"{self._spec.prefix}*{SEGMENT_SUFFIX}"
        for path in sorted(self._spec.segments_dir.glob(pattern)):
            if path.name in self._announced:
                continue
            written = path.stat()
            if written.st_size > 0:
                start = self.last_segment_at
                self._announce(path.name, start, max(start, written.st_mtime))


def _read_pgm(pipe: IO[bytes]) -> GrayFrame | None:
    """One binary PGM image ("P5\\nW H\\n255\\n" then the pixels), None at the end."""
    if pipe.readline() != b"P5\n":
        return None
    size = pipe.readline().split()
    if pipe.readline() != b"255\n" or len(size) != 2:
        return None
    width, height = int(size[0]), int(size[1])
    pixels = pipe.read(width * height)
    if len(pixels) != width * height:
        return None
    return np.frombuffer(pixels, np.uint8).reshape(height, width)
