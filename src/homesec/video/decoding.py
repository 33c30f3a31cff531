"""Which packets reach the decoder: the sampling schedule, a reader that skips ahead, one that
decodes lone keyframes, and `SamplerStats`, the count of what a sampling run decoded.

`homesec.video.sampler` drives these; other code only reads `SamplerStats`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from homesec.video.clip import VideoReadError

# Undecodable packets tolerated: this many, plus this share of the packets decoded.
_ERROR_ALLOWANCE = 3
_ERROR_SHARE = 0.05


@dataclass
class SamplerStats:
    """What a sampling run cost; pass one to `sample_frames` to have it filled in."""

    packets_read: int = 0
    packets_decoded: int = 0
    frames_decoded: int = 0
    frames_sampled: int = 0
    decode_errors: int = 0


class Schedule:
    """The wanted times, ascending, up to `end`; a frame within `tolerance` of one fills it."""

    def __init__(self, times: Iterable[float], end: float | None, tolerance: float) -> None:
        self._times = iter(times)
        self.end = end
        self.tolerance = tolerance
        self.next_s = next(self._times, math.inf)  # inf: nothing more is wanted

    @property
    def done(self) -> bool:
        return self.next_s == math.inf or (
            self.end is not None and self.next_s > self.end - self.tolerance
        )

    def wants(self, time_s: float) -> bool:
        return time_s >= self.next_s - self.tolerance

    def take(self, time_s: float) -> None:
        """A frame at `time_s` was sampled: move past every wanted time it stands for."""
        # At least one: a frame a hair before its time (float rounding) still fills it.
        self.next_s = next(self._times, math.inf)
        while self.next_s <= time_s + self.tolerance:
            self.next_s = next(self._times, math.inf)


class GopReader:
    """Sends the decoder only the packets the schedule needs, in their original order.

    Packets are held back while the next wanted time is still ahead, and sent (held ones
    first) once a packet reaches it. A keyframe at or before the wanted time makes the held
    packets useless: they are dropped unsent and decoding restarts at that keyframe.
    """

    def __init__(self, context: VideoCodecContext, stats: SamplerStats, path: Path) -> None:
        self._context = context
        self._stats = stats
        self._path = path
        self._held: list[Packet[VideoStream]] = []
        self._gap = False  # packets were dropped since the decoder last had one

    def feed(
        self, packet: Packet[VideoStream], packet_s: float | None, schedule: Schedule
    ) -> Iterator[VideoFrame]:
        if packet_s is not None and packet.is_keyframe and packet_s <= schedule.next_s:
            self._gap = self._gap or bool(self._held)
            self._held = []
        self._held.append(packet)
        # Without timestamps nothing can be skipped safely.
        if packet_s is None or schedule.wants(packet_s):
            yield from self._release()

    def drain(self) -> Iterator[VideoFrame]:
        """The frames still inside the decoder at the end of the stream."""
        if self._stats.packets_decoded:
            yield from self._decode(None)

    def _release(self) -> Iterator[VideoFrame]:
        if self._gap:
            # Frames still inside the decoder predate the keyframe, so none is wanted.
            self._context.flush_buffers()
            self._gap = False
        held, self._held = self._held, []
        for packet in held:
            yield from self._decode(packet)

    def _decode(self, packet: Packet[VideoStream] | None) -> list[VideoFrame]:
        if packet is not None:
            self._stats.packets_decoded += 1
        try:
            frames = self._context.decode(packet)
        except av.FFmpegError as exc:
            self._stats.decode_errors += 1
            allowed = _ERROR_ALLOWANCE + _ERROR_SHARE * self._stats.packets_decoded
            if self._stats.decode_errors > allowed:
                raise VideoReadError(
                    f"{self._path}: the video is corrupt ({self._stats.decode_errors} of "
                    f"{self._stats.packets_decoded} packets undecodable: {exc.strerror})"
                ) from exc
            return []
        self._stats.frames_decoded += len(frames)
        return frames


class KeyframeReader(GopReader):
    """Sends the decoder only the keyframes the schedule wants, each on its own.

    A keyframe needs no other picture, so it is decoded and drained at once: the decoder never
    sees the packets after it, which it would otherwise wait for to put B-frames in order.
    Packets without a timestamp are never sent: nothing tells whether they are wanted.
    """

    def feed(
        self, packet: Packet[VideoStream], packet_s: float | None, schedule: Schedule
    ) -> Iterator[VideoFrame]:
        if not packet.is_keyframe or packet_s is None or not schedule.wants(packet_s):
            return
        yield from self._decode(packet)
        yield from self._decode(None)
        self._context.flush_buffers()  # drained: ready for the next keyframe

    def drain(self) -> Iterator[VideoFrame]:
        return iter(())
