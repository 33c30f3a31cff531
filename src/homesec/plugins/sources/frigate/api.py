"""What HomeSec reads from Frigate: its review items (MQTT `frigate/reviews` and HTTP
`/api/review`) and their clips, cut from the recordings
(`/api/{camera}/start/{start}/end/{end}/clip.mp4`), as Frigate documents them.

Only the fields HomeSec uses are modelled; Frigate's others are ignored, so a newer Frigate
that adds fields still parses.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from homesec.errors import CausedError
from homesec.plugins.sources.base import spool_stream

logger = logging.getLogger(__name__)

# Every MP4 starts with a box whose type, at bytes 4-8, is `ftyp`.
_MP4_SIGNATURE = b"ftyp"
_CHUNK_BYTES = 1 << 16


# Frigate's ids look like `1718987129.308396-fqk5ka`, camera names like `front_cam`; both go
# into URLs and file names.
FRIGATE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class Severity(StrEnum):
    ALERT = "alert"
    DETECTION = "detection"


class MessageType(StrEnum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


class ReviewData(BaseModel):
    detections: list[Annotated[str, Field(pattern=FRIGATE_NAME)]] = Field(
        default_factory=list, description="Frigate event ids"
    )
    objects: list[str] = Field(default_factory=list)
    sub_labels: list[str] = Field(default_factory=list)
    zones: list[str] = Field(default_factory=list)


class ReviewItem(BaseModel):
    """One review item: a stretch of activity on one camera (Frigate's `ReviewSegment`)."""

    id: str = Field(pattern=FRIGATE_NAME)
    camera: str = Field(pattern=FRIGATE_NAME)
    start_time: datetime
    end_time: datetime | None = None
    severity: Severity
    data: ReviewData = Field(default_factory=ReviewData)


class ReviewMessage(BaseModel):
    """A message on `{topic_prefix}/reviews`: the item before and after a change."""

    type: MessageType
    after: ReviewItem


class EventData(BaseModel):
    box: list[float] | None = Field(default=None, description="x, y, width, height; 0..1")
    score: float | None = None
    top_score: float | None = None


class FrigateEvent(BaseModel):
    """One tracked object (`/api/events/{id}`): what Frigate's detector saw, where and when."""

    label: str
    start_time: datetime
    false_positive: bool | None = None
    zones: list[str] = Field(default_factory=list)
    top_score: float | None = None  # Frigate before 0.14 (now in `data`)
    data: EventData = Field(default_factory=EventData)

    @property
    def score(self) -> float:
        best = self.data.top_score or self.data.score or self.top_score or 0.0
        return min(max(best, 0.0), 1.0)


_REVIEW_LIST = TypeAdapter(list[object])


class FrigateUnreachable(CausedError):
    """Frigate did not answer (down, restarting, wrong address)."""


class ClipNotReady(CausedError):
    """Frigate answered, but has no usable clip (yet): it writes the clip a little after the
    item ends."""


class ClipTooLarge(CausedError):
    """The clip is larger than the source accepts."""


class FrigateApi:
    """Frigate's HTTP API, through one connection pool."""

    def __init__(self, base_url: str, timeout_s: float, download_timeout_s: float = 600.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._download_timeout_s = download_timeout_s

    async def aclose(self) -> None:
        await self._client.aclose()

    async def version(self) -> str:
        response = await self._get("/api/version")
        return response.text.strip()

    async def reviews(self, camera: str, after: datetime) -> list[ReviewItem]:
        """The camera's review items active after `after` (ended or not); items that are not
        Frigate's format are left out (logged), so one cannot hold up the others."""
        params: dict[str, str | float] = {"cameras": camera, "after": after.timestamp()}
        response = await self._get("/api/review", params=params)
        try:
            entries = _REVIEW_LIST.validate_json(response.content)
        except ValueError as exc:
            raise FrigateUnreachable(f"Frigate's /api/review answer is not a list: {exc}") from exc
        items = []
        for entry in entries:
            try:
                items.append(ReviewItem.model_validate(entry))
            except ValidationError as exc:
                logger.warning(
                    "Ignoring a review item of Frigate's that is not its format: %s",
                    exc.errors(include_url=False, include_input=False)[:1],
                )
        return items

    async def event(self, event_id: str) -> FrigateEvent:
        response = await self._get(f"/api/events/{event_id}")
        try:
            return FrigateEvent.model_validate_json(response.content)
        except ValueError as exc:
            raise FrigateUnreachable(f"Frigate's event {event_id} is not an event: {exc}") from exc

    async def set_description(self, event_id: str, description: str) -> None:
        """Show `description` with the event in Frigate's UI."""
        await self._post(f"/api/events/{event_id}/description", {"description": description})

    async def set_sub_label(self, event_id: str, name: str) -> None:
        """Name the event's object in Frigate's UI (`person` becomes `person: Alice`)."""
        await self._post(f"/api/events/{event_id}/sub_label", {"subLabel": name[:100]})

    async def _post(self, path: str, body: dict[str, str]) -> None:
        try:
            response = await self._client.post(path, json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FrigateUnreachable(f"Frigate {path}: {exc}", exc) from exc

    async def download_clip(self, item: ReviewItem, target: Path, max_bytes: int) -> int:
        """Write the ended item's clip to `target`; returns its size. Raises ClipNotReady when
        Frigate has none yet (an error status, an empty, undecodable or non-MP4 body)."""
        end = item.end_time or item.start_time
        url = (
            f"/api/{item.camera}/start/{item.start_time.timestamp()}/end/{end.timestamp()}/clip.mp4"
        )
        try:
            # The read timeout is per chunk: a trickling answer needs a limit of its own.
            async with (
                asyncio.timeout(self._download_timeout_s),
                self._client.stream("GET", url) as response,
            ):
                if response.status_code != httpx.codes.OK:
                    raise ClipNotReady(f"Frigate answered HTTP {response.status_code} for {url}")
                chunks = response.aiter_bytes(_CHUNK_BYTES)
                size = await spool_stream(chunks, target, max_bytes)
                if size is None:
                    raise ClipTooLarge(f"the clip of {item.id} is over {max_bytes} bytes")
        except httpx.TransportError as exc:
            raise FrigateUnreachable(f"cannot reach Frigate for {url}: {exc}", exc) from exc
        except TimeoutError as exc:
            limit = self._download_timeout_s
            raise FrigateUnreachable(f"Frigate took over {limit:.0f} s to send {url}", exc) from exc
        except httpx.DecodingError as exc:  # a body that does not match its Content-Encoding
            raise ClipNotReady(f"Frigate's answer for {url} cannot be decoded: {exc}", exc) from exc
        if (await asyncio.to_thread(_head, target))[4:8] != _MP4_SIGNATURE:
            raise ClipNotReady(f"Frigate's answer for {url} is not an MP4 ({size} bytes)")
        return size

    async def _get(self, path: str, params: dict[str, str | float] | None = None) -> httpx.Response:
        try:
            response = await self._client.get(path, params=params)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FrigateUnreachable(f"Frigate {path}: {exc}", exc) from exc
        return response


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(8)
