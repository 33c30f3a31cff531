"""Tells the notifiers that show it (Home Assistant) how many clips wait for review, per
camera: when HomeSec starts, after a clip the VLM asks a person to look at, and after a clip
is marked reviewed. Counted by the database, so several changes at once cost one count."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from homesec.interfaces import Notifier, ReviewPublisher
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)


class ReviewCounts:
    def __init__(
        self, repository: ClipRepository, notifiers: Sequence[Notifier], camera_names: list[str]
    ) -> None:
        self._repository = repository
        self._publishers = [n for n in notifiers if isinstance(n, ReviewPublisher)]
        self._cameras = camera_names
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def refresh_soon(self) -> None:
        """Count and publish in the background (once more if a count is running)."""
        if not self._publishers:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._refresh_while_asked(), name="review-counts")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _refresh_while_asked(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self.refresh()

    async def refresh(self) -> None:
        counts = await self._repository.review_counts()
        if counts is None:
            return  # the database cannot say: the next change, or start, counts again
        waiting = {camera: counts.get(camera, 0) for camera in self._cameras}
        for publisher in self._publishers:
            try:
                await publisher.publish_reviews(waiting)
            except Exception as exc:
                logger.warning("Could not publish the clips waiting for review: %s", exc)
