"""`http_ingest` source: clips sent to HomeSec's HTTP API (`POST /api/v1/ingest/{camera}`).

For NVR action rules, scripts and cameras that can only call a URL. The body is the clip. It
is written to a part file of its own, refused (and removed) when empty, over
`max_file_size_bytes`, not a video or not writable (a full disk), else synced to disk, named
by the service's `ClipNamer` (the `filename` sent keeps its name when it follows the clip_id
rule and is free; otherwise the clip is named after its arrival) and handed on, all before
the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import Field

from homesec.interfaces import SourceConfig
from homesec.models.clip import VIDEO_EXTENSIONS, Clip, parse_clip_id
from homesec.models.config import FolderPath
from homesec.models.enums import IngestRefusalReason, PluginType
from homesec.models.results import IngestRefusal
from homesec.plugins.registry import plugin
from homesec.plugins.sources.base import SourceBase, clip_record, spool_stream
from homesec.video.clip import ClipInfo, VideoReadError, probe_clip

logger = logging.getLogger(__name__)

BACKEND = "http_ingest"
_DEFAULT_EXTENSION = ".mp4"


class HttpIngestConfig(SourceConfig):
    """Where sent clips are kept, and how large one may be."""

    spool_dir: FolderPath = Field(
        default=Path("var/ingest"), description="Where sent clips are kept, a folder per camera"
    )
    max_file_size_bytes: int = Field(
        default=1_073_741_824, gt=0, description="Larger clips are refused (HTTP 413)"
    )
    max_upload_s: float = Field(
        default=600.0,
        gt=0,
        description="A clip still arriving after this long is refused (HTTP 408): a client "
        "that trickles holds no part file open for ever",
    )


@plugin(PluginType.SOURCE, BACKEND, config=HttpIngestConfig)
class HttpIngestSource(SourceBase[HttpIngestConfig]):
    backend = BACKEND

    def __init__(self, config: HttpIngestConfig) -> None:
        super().__init__(config)
        self._spool = config.spool_dir.expanduser().resolve() / config.camera_name
        self._parts = self._spool / ".parts"
        self._open_now = False

    async def _open(self) -> None:
        await asyncio.to_thread(self._prepare)
        self._open_now = True

    async def aclose(self) -> None:
        self._open_now = False

    def is_healthy(self) -> bool:
        return self._open_now

    def last_heartbeat(self) -> float:
        # Ready for the next clip at any moment while open: nothing else to wait for.
        return time.time() if self._open_now else 0.0

    def spooled_clips(self) -> list[Clip]:
        return self._clips_in(self._spool)

    async def receive(
        self, chunks: AsyncIterator[bytes], filename: str | None
    ) -> Clip | IngestRefusal:
        if not self._open_now:
            return _refused(IngestRefusalReason.NOT_RUNNING, "the camera is not running")
        part = self._parts / f"{uuid.uuid4().hex}.part"
        try:
            try:
                async with asyncio.timeout(self._config.max_upload_s):
                    refusal = await self._write(chunks, part)
            except TimeoutError:
                limit = self._config.max_upload_s
                refusal = _refused(
                    IngestRefusalReason.TOO_SLOW, f"the clip took over {limit:.0f} s to arrive"
                )
            if refusal is not None:
                return refusal
            match await self._probe(part):
                case IngestRefusal() as refusal:
                    return refusal
                case ClipInfo() as info:
                    clip = await self._name(part, filename, info.duration_s or 0.0)
        except OSError as exc:  # a full disk: the client may send the clip again later
            logger.error("Cannot store a clip sent over HTTP: %s", exc, extra=self._log_extra)
            return _refused(
                IngestRefusalReason.NOT_STORED, f"the clip cannot be stored: {exc.strerror}"
            )
        finally:
            await asyncio.to_thread(part.unlink, missing_ok=True)
        self._hand_on(clip, f", sent as {filename!r}" if filename else ", sent over HTTP")
        return clip

    def _prepare(self) -> None:
        self._parts.mkdir(parents=True, exist_ok=True)
        for part in self._parts.iterdir():  # bodies cut short by the last stop: never answered
            part.unlink(missing_ok=True)

    async def _write(self, chunks: AsyncIterator[bytes], part: Path) -> IngestRefusal | None:
        limit = self._config.max_file_size_bytes
        match await spool_stream(chunks, part, limit, mode="xb"):
            case None:
                return _refused(IngestRefusalReason.TOO_LARGE, f"the clip is over {limit} bytes")
            case 0:
                return _refused(IngestRefusalReason.EMPTY, "the body is empty: send the clip")
        return None

    async def _probe(self, part: Path) -> ClipInfo | IngestRefusal:
        try:
            return await asyncio.to_thread(probe_clip, part)
        except VideoReadError as exc:
            why = str(exc).removeprefix(f"{part}: ")  # the client sees no path of the server
            return _refused(IngestRefusalReason.NOT_A_VIDEO, f"not a video clip: {why}")

    async def _name(self, part: Path, filename: str | None, duration_s: float) -> Clip:
        """Give the synced part its clip name in the spool: the name sent when it follows
        the clip_id rule (its second is the start), else the clip ended as it arrived."""
        sent = Path(filename).name if filename else None
        named = parse_clip_id(sent, self.camera_name) if sent else None
        start = float(named.unix_seconds) if named else time.time() - duration_s
        extension = Path(sent).suffix.lower() if sent else ""
        extension = extension if extension in VIDEO_EXTENSIONS else _DEFAULT_EXTENSION
        target = await self._names.claim(
            self.camera_name, int(start), extension, self._spool, wanted=sent if named else None
        )
        await asyncio.to_thread(part.rename, target)
        return clip_record(target, self.camera_name, BACKEND, start, duration_s)


def _refused(reason: IngestRefusalReason, message: str) -> IngestRefusal:
    return IngestRefusal(reason=reason, message=message)
