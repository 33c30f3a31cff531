"""Clips that tests need and the shared media lacks: spliced, remuxed, truncated, corrupt."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType


def splice_clip(
    path: Path,
    spans: list[tuple[Path, float, float]],
    size: tuple[int, int],
    fps: int = 15,
    gop: int = 30,
) -> Path:
    """Re-encode the [start, end) seconds of each source, back to back, as one H.264 clip
    with a keyframe every `gop` frames."""
    with av.open(str(path), "w") as out:
        # Keyframes every `gop` frames, none at scene cuts.
        options = {"preset": "ultrafast", "g": str(gop), "sc_threshold": "0"}
        stream = out.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        index = 0
        for source, start, end in spans:
            with av.open(str(source)) as clip:
                clip.streams.video[0].thread_type = "AUTO"
                for frame in clip.decode(video=0):
                    if frame.time is None or frame.time < start:
                        continue
                    if frame.time >= end:
                        break
                    picture = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    picture.pts, picture.time_base = index, Fraction(1, fps)
                    picture.pict_type = PictureType.NONE  # the source's keyframes force none
                    index += 1
                    out.mux(stream.encode(picture))
        out.mux(stream.encode())
    return path


def remux_faststart(source: Path, path: Path) -> Path:
    """Copy a clip's video packets into an MP4 whose index comes first, as streamers write."""
    with (
        av.open(str(source)) as clip,
        av.open(str(path), "w", options={"movflags": "faststart"}) as out,
    ):
        video = clip.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in clip.demux(video):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)
    return path


def remux_shifted(source: Path, path: Path, shift_s: float, end_s: float) -> Path:
    """Copy the first `end_s` seconds of video packets, stamped `shift_s` later, into `path`
    (container from its suffix): a clip whose stream does not start at zero."""
    with av.open(str(source)) as clip, av.open(str(path), "w") as out:
        video = clip.streams.video[0]
        stream = out.add_stream_from_template(video)
        time_base = video.time_base
        assert time_base is not None
        shift = round(shift_s / time_base)
        for packet in clip.demux(video):
            if packet.dts is None or packet.pts is None:
                continue
            if packet.pts * time_base >= end_s:
                break
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = stream
            out.mux(packet)
    return path


def truncate(source: Path, path: Path, keep: float) -> Path:
    """The first `keep` share of the file's bytes, as a copy cut off mid-write."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def scramble(source: Path, path: Path, start: float = 0.0, end: float = 0.97) -> Path:
    """Overwrite a span of the file with random bytes (the MP4 index at the end survives)."""
    data = bytearray(source.read_bytes())
    first, last = int(len(data) * start), int(len(data) * end)
    data[first:last] = random.Random(7).randbytes(last - first)
    path.write_bytes(bytes(data))
    return path
