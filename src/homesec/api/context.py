"""What the routes work with: the repository, media files, sources, health, media links,
the modes and the review counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from homesec.api.media_files import MediaFiles
from homesec.api.signing import MediaLinker
from homesec.health import HealthMonitor
from homesec.interfaces import ClipSource, ModeControl
from homesec.models.zones import Zones
from homesec.repository.clip_repository import ClipRepository
from homesec.reviews import ReviewCounts


@dataclass(frozen=True)
class ApiContext:
    monitor: HealthMonitor
    repository: ClipRepository
    media: MediaFiles
    sources: Sequence[ClipSource]
    media_links: MediaLinker
    camera_zones: Mapping[str, Zones] = field(default_factory=dict)
    modes: ModeControl | None = None
    reviews: ReviewCounts | None = None


async def _context(request: Request) -> ApiContext:
    # async: FastAPI runs plain-def dependencies in a thread pool, a hop per request.
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(_context)]
