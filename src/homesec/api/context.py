"""What the routes work with: the repository, media files, sources, health, media links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from homesec.api.media_files import MediaFiles
from homesec.api.signing import MediaLinker
from homesec.health import HealthMonitor
from homesec.interfaces import ClipSource
from homesec.repository.clip_repository import ClipRepository


@dataclass(frozen=True)
class ApiContext:
    monitor: HealthMonitor
    repository: ClipRepository
    media: MediaFiles
    sources: Sequence[ClipSource]
    media_links: MediaLinker


async def _context(request: Request) -> ApiContext:
    # async: FastAPI runs plain-def dependencies in a thread pool, a hop per request.
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(_context)]
