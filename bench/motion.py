"""RTSP cameras: CPU and memory HomeSec spends per camera on motion detection and recording.

N `rtsp` sources watch two cameras served on loopback by ../shared/tools/rtsp_serve.py: a
640x360 5 fps detect stream and a main stream (1080p 15 fps by default) recorded with stream
copy, both from the 1080p front-door clip (people walking the whole time: motion, recording
and a clip finished every `--max-clip` seconds) or from the empty lawn (`--scene still`).
All sources connect to the same two server processes (one encode, N readers); the servers'
CPU is not HomeSec's and is left out.

After a warm-up, prints for the measured window:
- CPU seconds per camera-second of video: this process (reading frames, motion detection,
  finishing clips) plus its ffmpeg processes (one per camera);
- the floor for comparison: ffmpeg alone receiving the same two streams per camera
  (main copied to nowhere, detect stream decoded to nowhere), which any recorder pays;
- memory per camera: this process's RSS growth plus its ffmpeg processes' proportional set
  size (PSS: shared libraries counted once across processes), and their plain RSS.

    uv run python -m bench.motion [--cameras 4] [--seconds 60] [--scene people|still]

Target (the RTSP issue): at most 0.03 CPU s per camera-second, under 60 MB per camera.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.services.rtsp_server import RTSPCamera, ffmpeg_children
from tests.services.shared_files import MEDIA_DIR

import homesec.plugins.sources.rtsp  # noqa: F401  (imported before the memory baseline)
from homesec.interfaces import ClipSource
from homesec.models.clip import Clip
from homesec.pipeline.naming import ClipNames
from homesec.plugins.registry import load_source
from homesec.video.ffmpeg import FfmpegProcess

SCENES = {
    "people": MEDIA_DIR / "front_door_1700000000.mp4",
    "still": MEDIA_DIR / "backyard_1700000100.mp4",
}
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far: this process, its reaped children, its live ffmpeg processes."""

    own_s: float
    reaped_s: float
    ffmpeg_s: dict[int, float]

    @classmethod
    def now(cls) -> Usage:
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        ffmpeg = {pid: _cpu_s(pid) for pid in ffmpeg_children()}
        return cls(own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime, ffmpeg)

    def since(self, before: Usage) -> tuple[float, float, float]:
        """(this process, reaped children, live ffmpeg) CPU seconds since `before`."""
        live = sum(cpu - before.ffmpeg_s.get(pid, 0.0) for pid, cpu in self.ffmpeg_s.items())
        return self.own_s - before.own_s, self.reaped_s - before.reaped_s, live


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _memory_kb(pid: int | str, key: str) -> int:
    for table in ("status", "smaps_rollup"):
        try:
            for line in Path(f"/proc/{pid}/{table}").read_text().splitlines():
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
        except OSError:
            continue
    return 0


async def _measure_sources(args: argparse.Namespace, work: Path) -> None:
    base_rss_kb = _memory_kb("self", "VmRSS")
    sources: list[ClipSource] = []
    clips: list[Clip] = []
    try:
        for index in range(args.cameras):
            source = load_source(
                "rtsp",
                {
                    "camera_name": f"cam{index}",
                    "rtsp_url_env": "BENCH_MAIN_URL",
                    "detect_url_env": "BENCH_DETECT_URL",
                    "recordings_dir": str(work / f"cam{index}"),
                    "max_clip_s": args.max_clip,
                },
            )
            source.register_callback(clips.append)
            source.use_namer(ClipNames())
            await source.start()
            sources.append(source)
        await _until_healthy(sources)
        await asyncio.sleep(args.warmup)
        before, started = Usage.now(), time.monotonic()
        await asyncio.sleep(args.seconds)
        after, elapsed = Usage.now(), time.monotonic() - started
        growth_kb = _memory_kb("self", "VmRSS") - base_rss_kb
        pss_kb = sum(_memory_kb(pid, "Pss") for pid in after.ffmpeg_s)
        rss_kb = sum(_memory_kb(pid, "VmRSS") for pid in after.ffmpeg_s)
        healthy = sum(source.is_healthy() for source in sources)
    finally:
        for source in sources:
            await source.aclose()
    own, reaped, live = after.since(before)
    ffmpeg = reaped + live
    per = args.cameras * elapsed
    print(
        f"{args.cameras} camera(s), scene {args.scene}, main {args.main_width} wide 15 fps, "
        f"detect 640x360 5 fps: {elapsed:.0f} s measured, {healthy} healthy, {len(clips)} clip(s)"
    )
    print(
        f"CPU per camera-second: {(own + ffmpeg) / per:.4f} s  (target <= 0.03)\n"
        f"  ffmpeg {ffmpeg / per:.4f}, python (frames, motion, clip remux) {own / per:.4f}"
    )
    mb = 1024 * args.cameras
    print(
        f"memory per camera: {(growth_kb + pss_kb) / mb:.1f} MB  (target < 60 MB)\n"
        f"  process growth {growth_kb / mb:.1f} MB + ffmpeg PSS {pss_kb / mb:.1f} MB "
        f"(ffmpeg RSS {rss_kb / mb:.1f} MB)"
    )


async def _measure_floor(args: argparse.Namespace) -> None:
    main, detect = os.environ["BENCH_MAIN_URL"], os.environ["BENCH_DETECT_URL"]
    tcp = ["-rtsp_transport", "tcp"]
    commands = [
        [*tcp, "-i", main, "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
        [*tcp, "-threads", "1", "-i", detect, "-map", "0:v:0", "-f", "null", "-"],
    ]
    processes = [
        FfmpegProcess.start(command, name="floor")
        for _ in range(args.cameras)
        for command in commands
    ]
    try:
        await asyncio.sleep(args.warmup)
        before, started = Usage.now(), time.monotonic()
        await asyncio.sleep(args.seconds)
        after, elapsed = Usage.now(), time.monotonic() - started
    finally:
        for process in processes:
            await asyncio.to_thread(process.stop)
    _, _, streams = after.since(before)
    print(
        f"floor, ffmpeg alone receiving the same streams: "
        f"{streams / (args.cameras * elapsed):.4f} CPU s per camera-second"
    )


async def _until_healthy(sources: list[ClipSource]) -> None:
    deadline = time.monotonic() + 60
    while not all(source.is_healthy() for source in sources):
        if time.monotonic() > deadline:
            raise RuntimeError("the sources did not all receive frames within 60 s")
        await asyncio.sleep(0.2)


async def _run(args: argparse.Namespace, work: Path) -> None:
    video = SCENES[args.scene]
    detect = RTSPCamera(video, fps=5, width=640)
    main = RTSPCamera(video, fps=15, width=args.main_width)
    try:
        for camera in (detect, main):
            camera.start()
        os.environ["BENCH_MAIN_URL"] = main.url
        os.environ["BENCH_DETECT_URL"] = detect.url
        await _measure_sources(args, work)
        await _measure_floor(args)
    finally:
        for camera in (detect, main):
            camera.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--scene", choices=sorted(SCENES), default="people")
    parser.add_argument("--main-width", type=int, default=1920)
    parser.add_argument("--max-clip", type=float, default=20.0, help="max_clip_s of the sources")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-motion-") as work:
        asyncio.run(_run(args, Path(work)))


if __name__ == "__main__":
    main()
