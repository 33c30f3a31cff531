"""Clips processed again in the background until they are done, each round after a longer wait.

After a round that leaves a clip unfinished, another round is scheduled:
- its upload failed (P0): until it succeeds, `retry.backoff_s` doubling up to
  `retry.upload_retry_max_backoff_s`; the local copy is kept meanwhile (retention never
  deletes a clip that is not in storage);
- a stage ended in error: `retry.rerun_max_rounds` rounds, `retry.rerun_initial_s` doubling
  up to `retry.rerun_max_backoff_s`; then the clip stays in error until the next start.
A round runs every stage that is not `ok` (error stages only within the error rounds), so
a clip already alerted is not alerted again. A clip whose local copy was pruned meanwhile
(it is in storage) is downloaded to the work folder first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homesec.models.clip import Clip
from homesec.models.config import RetryConfig
from homesec.models.enums import ClipStatus
from homesec.models.state import ClipStateData

logger = logging.getLogger(__name__)


@dataclass
class _Rounds:
    done: int = 0
    timer: asyncio.Task[None] | None = None


class Reruns:
    def __init__(
        self, retry: RetryConfig, rerun: Callable[[Clip, ClipStateData], Awaitable[None]]
    ) -> None:
        self._retry = retry
        self._rerun = rerun
        self._clips: dict[str, _Rounds] = {}

    def __contains__(self, clip_id: str) -> bool:
        rounds = self._clips.get(clip_id)
        return rounds is not None and rounds.timer is not None and not rounds.timer.done()

    def retries_errors(self, clip_id: str) -> bool:
        """Whether this round of the clip may try its stages in error again."""
        rounds = self._clips.get(clip_id)
        return rounds is None or rounds.done <= self._retry.rerun_max_rounds

    def after_round(self, clip: Clip, state: ClipStateData) -> None:
        """Schedule the clip's next round, if it needs one."""
        rounds = self._clips.setdefault(clip.clip_id, _Rounds())
        delay = self._next_wait(state, rounds.done)
        if delay is None:
            self._clips.pop(clip.clip_id, None)
            if state.status == ClipStatus.ERROR:
                logger.warning(
                    "%s stays in error until the next start (%d background rounds tried)",
                    clip.clip_id,
                    rounds.done,
                    extra={"clip_id": clip.clip_id, "camera_name": clip.camera_name},
                )
            return
        rounds.done += 1
        rounds.timer = asyncio.create_task(
            self._wait_then_rerun(clip, state, delay), name=f"rerun:{clip.clip_id}"
        )

    def forget(self, clip_id: str) -> None:
        """The clip is processed now by other means (handed on again): no timer for it."""
        rounds = self._clips.get(clip_id)
        if rounds is not None and rounds.timer is not None:
            rounds.timer.cancel()
            rounds.timer = None

    async def close(self) -> None:
        """Cancel every waiting round (the clips are unfinished: start-up recovery has them)."""
        timers = [r.timer for r in self._clips.values() if r.timer is not None]
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._clips.clear()

    def _next_wait(self, state: ClipStateData, done: int) -> float | None:
        retry = self._retry
        if state.status == ClipStatus.DONE:
            return None
        if not state.is_uploaded:
            return min(retry.backoff_s * 2.0**done, retry.upload_retry_max_backoff_s)
        if state.status == ClipStatus.ERROR and done < retry.rerun_max_rounds:
            return min(retry.rerun_initial_s * 2.0**done, retry.rerun_max_backoff_s)
        return None

    async def _wait_then_rerun(self, clip: Clip, state: ClipStateData, delay: float) -> None:
        await asyncio.sleep(max(delay, 0.01))
        rounds = self._clips.get(clip.clip_id)
        if rounds is not None:
            rounds.timer = None
        await self._rerun(clip, state)
