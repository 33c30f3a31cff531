"""Running one stage of one clip: its tries with backoff, journal and metrics, and giving up.

A stage that gives up is recorded in the clip's journal (the clip ends in `error`, or its
upload stays `pending`, and its later rounds try again), and the clip goes on without that
stage's result: a person is still alerted when the VLM is down. `retry.on_exhausted` says
whether a person is also told through a system alert:
- `alert_and_continue`: a system alert when a stage starts failing, not again for the clips
  that fail after it until the stage works again (a VLM down for an hour is one alert, not
  one per clip), and never twice for one clip (not in a later round, not after a restart);
  again later if no sink took it;
- `fail`: only the log (ERROR) and the clip's journal.
Either way the stage counts as failing (health) until it next succeeds for some clip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
)

from homesec import metrics
from homesec.backoff import Jitter, exponential_wait
from homesec.errors import PipelineError, RetriesSpent
from homesec.models.alert import SystemAlert
from homesec.models.config import RetryConfig
from homesec.models.enums import (
    EventType,
    OnExhausted,
    StageName,
    StageStatus,
    SystemAlertKind,
)
from homesec.models.events import utc_now
from homesec.pipeline.journal import ClipJournal

logger = logging.getLogger(__name__)

ResultT = TypeVar("ResultT")
ErrorT = TypeVar("ErrorT", bound=PipelineError)


def retrying(config: RetryConfig) -> AsyncRetrying:
    """The one retry policy of the pipeline, for one stage of one clip: exponential backoff
    with jitter; re-raises the last error.

    Any error is tried again, except `RetriesSpent`: the plugin already did its retrying.
    """
    return AsyncRetrying(
        stop=stop_after_attempt(config.max_attempts),
        wait=exponential_wait(config.backoff_s, config.max_backoff_s, Jitter.ADDED),
        # Exception only: a cancelled clip (CancelledError) must stop at once.
        retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(RetriesSpent),
        reraise=True,
    )


class StageRunner:
    def __init__(
        self,
        retry: RetryConfig,
        slots: dict[StageName, asyncio.Semaphore],
        system_alert: Callable[[SystemAlert], Awaitable[bool]],
    ) -> None:
        self._retry = retry
        self._slots = slots
        self._system_alert = system_alert
        self.failing: dict[StageName, str] = {}
        """The stages whose last outcome was giving up, and why (the health shows them)."""
        self._told: set[StageName] = set()  # failing stages a system alert told of (once each)

    def succeeded(self, stage: StageName) -> None:
        self.failing.pop(stage, None)
        self._told.discard(stage)

    async def run(
        self,
        journal: ClipJournal,
        error_type: type[ErrorT],
        plugin_name: str,
        call: Callable[[], Awaitable[ResultT]],
        consequence: str,
        exhausted: StageStatus = StageStatus.ERROR,
    ) -> ResultT | ErrorT:
        """Run one stage with retries, journaling every attempt; errors come back as values.

        Giving up is logged as "{stage} failed; {consequence}" (what the clip does without it).
        """
        stage = error_type.stage

        def wrap(exc: Exception) -> ErrorT:
            return error_type(journal.clip_id, plugin_name, exc)

        max_attempts = self._retry.max_attempts
        first = journal.state.stage(stage).attempts
        try:
            async for attempt in retrying(self._retry):
                with attempt:
                    number = journal.attempt_started(stage)
                    started = time.perf_counter()
                    try:
                        async with self._slots[stage]:
                            result = await call()
                    except Exception as exc:
                        metrics.stage_observed(stage, time.perf_counter() - started, ok=False)
                        final = number - first >= max_attempts or isinstance(exc, RetriesSpent)
                        then = exhausted if final else None
                        if then is None:
                            metrics.retry(stage)
                        journal.attempt_failed(wrap(exc), then=then)
                        raise
                    metrics.stage_observed(stage, time.perf_counter() - started, ok=True)
                    self.succeeded(stage)
                    return result
        except Exception as exc:
            error = wrap(exc)
            await self.gave_up(journal, error)
            state = journal.state
            logger.error(
                "%s failed; %s: %s",
                _STAGE_LABELS[stage],
                consequence,
                error.describe(),
                extra=log_extra(state.clip_id, state.camera_name, EventType.STAGE_FAILED),
            )
            return error
        raise AssertionError("retrying() ended without a result or an error")

    def slot(self, stage: StageName) -> asyncio.Semaphore:
        """The stage's concurrency limit, for stages that retry per part (notify)."""
        return self._slots[stage]

    async def gave_up(self, journal: ClipJournal, error: PipelineError) -> None:
        """A stage of the clip is out of tries: the health shows it; a system alert tells a
        person once per clip and stage (unless `on_exhausted: fail`)."""
        state = journal.state
        self.failing[error.stage] = error.describe()
        attempts = state.stage(error.stage).attempts
        if error.stage == StageName.UPLOAD:
            what = f"upload failed {attempts} time(s), retried in the background until it works"
        else:
            what = f"{error.stage} gave up after {attempts} attempt(s)"
        message = f"{what}: {error.describe()}"
        extra = log_extra(state.clip_id, state.camera_name)
        silent = self._why_silent(error.stage, state.system_alerted)
        if silent is not None:
            logger.error("%s (no system alert: %s)", message, silent, extra=extra)
            return
        delivered = await self._system_alert(
            SystemAlert(
                kind=SystemAlertKind.STAGE_RETRIES_EXHAUSTED,
                message=message,
                ts=utc_now(),
                clip_id=state.clip_id,
                camera_name=state.camera_name,
                stage=error.stage,
            )
        )
        if delivered:  # else a later round, or the next clip, tells again
            journal.system_alerted(error.stage, message)
            self._told.add(error.stage)

    def _why_silent(self, stage: StageName, alerted: list[StageName]) -> str | None:
        if self._retry.on_exhausted == OnExhausted.FAIL:
            return "retry.on_exhausted is fail"
        if stage in alerted:
            return "already sent for this clip"
        if stage in self._told:
            return f"sent already: {stage} has not worked since"
        return None


_STAGE_LABELS = {StageName.UPLOAD: "Upload", StageName.FILTER: "Filter", StageName.VLM: "VLM"}


def log_extra(
    clip_id: str | None, camera_name: str | None, event_type: EventType | None = None
) -> dict[str, str | None]:
    """The `extra` of a log line about one clip (telemetry's fields)."""
    extra = {"clip_id": clip_id, "camera_name": camera_name}
    if event_type is not None:
        extra["event_type"] = event_type
    return extra
