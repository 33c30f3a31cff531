"""The household's reference pictures (`vlm.known`) as the VLM sees them: downscaled JPEGs,
made once per picture and kept while the file is unchanged."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
from cachetools import LRUCache

from homesec.models.known import KnownEntity

logger = logging.getLogger(__name__)

_MAX_SIDE = 512
_QUALITY = 85


@dataclass(frozen=True)
class Reference:
    entity: KnownEntity
    jpeg: bytes

    @property
    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode("ascii")


class References:
    """Encodes reference pictures off the event loop; an unreadable one is left out (logged)."""

    def __init__(self) -> None:
        self._encoded: LRUCache[tuple[Path, int, int], bytes] = LRUCache(maxsize=64)

    async def of(self, known: list[KnownEntity]) -> list[Reference]:
        if not known:
            return []
        return await asyncio.to_thread(self._all, known)

    def _all(self, known: list[KnownEntity]) -> list[Reference]:
        references = []
        for entity in known:
            try:
                references.append(Reference(entity, self._jpeg(entity.image)))
            except (OSError, ValueError) as exc:
                logger.warning("Reference picture of %r left out: %s", entity.name, exc)
        return references

    def _jpeg(self, path: Path) -> bytes:
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        if (cached := self._encoded.get(key)) is not None:
            return cached
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path.name} is not a picture OpenCV can read")
        height, width = image.shape[:2]
        scale = min(1.0, _MAX_SIDE / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _QUALITY])
        if not ok:
            raise ValueError(f"{path.name} could not be encoded as JPEG")
        self._encoded[key] = jpeg = encoded.tobytes()
        return jpeg
