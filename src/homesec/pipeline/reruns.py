"""Clips processed again in the background until they are done, each round after a longer wait.

After a round that leaves a clip unfinished, another round is scheduled:
- its upload failed (P0): until it succeeds, `retry.backoff_s` doubling up to
  `retry.upload_retry_max_backoff_s`; the local copy is kept meanwhile (retention never
  deletes a clip that is not in storage);
- a stage ended in error: `retry.rerun_max_rounds` error rounds, `retry.rerun_initial_s`
  doubling up to `retry.rerun_max_backoff_s`; then the clip stays in error until the next
  start. The two schedules are kept apart: upload rounds never use up the error rounds, and
  the stages in error are tried again only when an error round is due, or at once when the
  upload has just succeeded (the network is back: a failed alert may go out now; one more
  round even when the error rounds are spent).
A round runs every stage that is not `ok` (the stages in error only in an error round), so
nothing already sent is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from homesec.backoff import exponential_wait, wait_after
from homesec.models.clip import Clip
from homesec.models.config import RetryConfig
from homesec.models.enums import ClipStatus
from homesec.models.state import ClipStateData
from homesec.pipeline.stages import log_extra

logger = logging.getLogger(__name__)


@dataclass
class _Rounds:
    """One clip's background rounds so far."""

    upload_rounds: int = 0
    error_rounds: int = 0
    errors_due: float = 0.0  # monotonic time the next error round may run
    retrying_errors: bool = True  # the round running now tries the stages in error again
    awaiting_upload: bool = False
    uploaded_just_now: bool = False  # one error round at once, spent or not
    timer: asyncio.Task[None] | None = None


class Reruns:
    def __init__(self, retry: RetryConfig, rerun: Callable[[Clip, ClipStateData], object]) -> None:
        self._retry = retry
        self._rerun = rerun
        self._error_waits = exponential_wait(retry.rerun_initial_s, retry.rerun_max_backoff_s)
        self._upload_waits = exponential_wait(retry.backoff_s, retry.upload_retry_max_backoff_s)
        self._clips: dict[str, _Rounds] = {}
        self._closed = False

    def begin_round(self, clip_id: str) -> None:
        """A round of the clip starts: decide whether it tries the stages in error again."""
        rounds = self._clips.get(clip_id)
        if rounds is None:
            return  # its first round (or the first since a start): everything is tried
        due = rounds.error_rounds < self._retry.rerun_max_rounds
        on_time = due and time.monotonic() >= rounds.errors_due
        rounds.retrying_errors = on_time or rounds.uploaded_just_now
        rounds.uploaded_just_now = False
        if on_time:
            rounds.error_rounds += 1

    def retries_errors(self, clip_id: str) -> bool:
        """Whether the running round of the clip tries its stages in error again."""
        rounds = self._clips.get(clip_id)
        return rounds is None or rounds.retrying_errors

    def after_round(self, clip: Clip, state: ClipStateData) -> None:
        """Schedule the clip's next round, if it needs one (none once closed)."""
        if self._closed:
            return  # shutting down: start-up recovery takes the clip again
        if state.status == ClipStatus.DONE:
            self._clips.pop(clip.clip_id, None)
            return
        rounds = self._clips.setdefault(clip.clip_id, _Rounds())
        now = time.monotonic()
        if rounds.retrying_errors:
            # The first round counts too: error_rounds are the background ones.
            rounds.errors_due = now + wait_after(self._error_waits, rounds.error_rounds + 1)
        if rounds.awaiting_upload and state.is_uploaded:
            rounds.uploaded_just_now = True  # the network is back: try the rest again now
        rounds.awaiting_upload = not state.is_uploaded
        waits = []
        if not state.is_uploaded:
            rounds.upload_rounds += 1
            waits.append(wait_after(self._upload_waits, rounds.upload_rounds))
        if state.status == ClipStatus.ERROR:
            if rounds.uploaded_just_now:
                waits.append(0.0)
            elif rounds.error_rounds < self._retry.rerun_max_rounds:
                waits.append(max(0.0, rounds.errors_due - now))
        if not waits:
            self._clips.pop(clip.clip_id, None)
            logger.warning(
                "%s stays in error until the next start (%d background rounds tried)",
                clip.clip_id,
                rounds.error_rounds,
                extra=log_extra(clip.clip_id, clip.camera_name),
            )
            return
        rounds.timer = asyncio.create_task(
            self._wait_then_rerun(clip, state, min(waits)), name=f"rerun:{clip.clip_id}"
        )

    def forget(self, clip_id: str) -> None:
        """The clip is processed now by other means (handed on again): no timer for it."""
        rounds = self._clips.get(clip_id)
        if rounds is not None and rounds.timer is not None:
            rounds.timer.cancel()
            rounds.timer = None

    async def aclose(self) -> None:
        """Cancel every waiting round and schedule no more (the clips are unfinished:
        start-up recovery has them)."""
        self._closed = True
        timers = [r.timer for r in self._clips.values() if r.timer is not None]
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._clips.clear()

    async def _wait_then_rerun(self, clip: Clip, state: ClipStateData, delay: float) -> None:
        await asyncio.sleep(max(delay, 0.01))
        rounds = self._clips.get(clip.clip_id)
        if rounds is not None:
            rounds.timer = None
        # The round goes on from the state this process left (the database may be down).
        self._rerun(clip, state)
