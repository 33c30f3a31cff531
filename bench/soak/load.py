"""The load: clips dropped into watched folders and uploaded over FTP, named like cameras do.

Every clip handed over is recorded in a `Ledger` the moment its hand-over completed (the
copy finished, the FTP server answered 226): that is what the campaign must find again.
"""

from __future__ import annotations

import asyncio
import ftplib
import itertools
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

logger = logging.getLogger(__name__)

_FTP_RETRY_S = 1.0


class SourceKind(StrEnum):
    """How a camera hands clips to HomeSec (the report's rows)."""

    FOLDER = "folder"
    FTP = "ftp"
    RTSP = "rtsp"


@dataclass(frozen=True)
class Media:
    """A clip file to copy, and whether it shows a person (so it should alert)."""

    path: Path
    has_person: bool


@dataclass(frozen=True)
class ProducedClip:
    clip_id: str
    camera: str
    kind: SourceKind
    has_person: bool | None
    """None when the content is not known in advance (RTSP motion clips)."""
    produced_at: float


@dataclass
class Ledger:
    """Every clip a source produced, by clip_id."""

    clips: dict[str, ProducedClip] = field(default_factory=dict)

    def add(self, clip: ProducedClip) -> None:
        self.clips.setdefault(clip.clip_id, clip)


def prepare_media(shared_media: Path, work: Path) -> list[Media]:
    """The rotation of clips: short 640-wide cuts (cheap on 2 cores) and one full 1080p clip."""
    work.mkdir(parents=True, exist_ok=True)
    person = shared_media / "front_door_1700000000.mp4"
    empty = shared_media / "backyard_1700000100.mp4"
    person_short, empty_short = work / "person_short.mp4", work / "empty_short.mp4"
    for source, target in ((person, person_short), (empty, empty_short)):
        if not target.exists():
            subprocess.run(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-t", "5", "-i",
                 str(source), "-vf", "scale=640:-2", "-c:v", "libx264", "-preset", "veryfast",
                 "-an", str(target)],
                check=True,
            )  # fmt: skip
    short = [Media(person_short, True), Media(empty_short, False)]
    return [*short, *short, Media(person, True), Media(empty_short, False)]


class ClipNamer:
    """`{camera}_{unix_seconds}.mp4`, one second apart at least per camera."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, camera: str) -> str:
        seconds = max(int(time.time()), self._last.get(camera, 0) + 1)
        self._last[camera] = seconds
        return f"{camera}_{seconds}.mp4"


@dataclass(frozen=True)
class FtpAccount:
    host: str
    port: int
    user: str
    password: str
    folder: str


@dataclass(frozen=True)
class Camera:
    """A camera of the load: a watched folder (`watch_dir`) or an FTP account."""

    name: str
    kind: SourceKind
    watch_dir: Path | None = None
    ftp: FtpAccount | None = None


async def produce(
    cameras: list[Camera], media: list[Media], ledger: Ledger, every_s: float, until: float
) -> None:
    """Hand a clip to the next camera every `every_s` seconds until `until` (monotonic)."""
    namer = ClipNamer()
    pending: set[asyncio.Task[None]] = set()
    for camera, clip in zip(itertools.cycle(cameras), itertools.cycle(media), strict=False):
        if time.monotonic() >= until:
            break
        name = namer.next(camera.name)
        task = asyncio.create_task(_hand_over(camera, clip, name, ledger), name=f"load-{name}")
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(every_s)
    # An FTP camera keeps retrying while HomeSec is down: wait for those hand-overs too.
    await asyncio.gather(*pending)


async def _hand_over(camera: Camera, media: Media, name: str, ledger: Ledger) -> None:
    match camera.kind:
        case SourceKind.FOLDER:
            assert camera.watch_dir is not None
            await asyncio.to_thread(shutil.copyfile, media.path, camera.watch_dir / name)
        case SourceKind.FTP:
            assert camera.ftp is not None
            for _ in itertools.count():
                if await asyncio.to_thread(_ftp_upload, camera.ftp, media.path, name):
                    break
                await asyncio.sleep(_FTP_RETRY_S)
        case _:
            raise ValueError(f"{camera.kind} cameras are not fed by the load")
    ledger.add(ProducedClip(name, camera.name, camera.kind, media.has_person, time.monotonic()))


def _ftp_upload(account: FtpAccount, path: Path, name: str) -> bool:
    """One upload attempt, as a camera does it; False when it did not complete."""
    try:
        with ftplib.FTP() as ftp, path.open("rb") as handle:
            ftp.connect(account.host, account.port, timeout=10)
            ftp.login(account.user, account.password)
            ftp.cwd(account.folder)
            ftp.storbinary(f"STOR {name}", handle)
    except (OSError, EOFError, ftplib.Error) as exc:
        logger.debug("FTP upload of %s failed (%s); retrying", name, type(exc).__name__)
        return False
    return True
