"""ClipPipeline: one async flow per clip, from local file to notification.

    upload ─┐ (in parallel, each retried with backoff)
    filter ─┴─> snapshot -> VLM (per run_mode) -> alert policy -> notifiers (after the upload)
                        └─> detection event (unless it went out while the clip was recorded)

Stages return their result or a PipelineError (errors as values). A filter error stops the
clip; upload, VLM and notify errors do not. An upload that still fails after its inline
retries stays `pending` and is retried in the background until it succeeds. Stages already
`ok` in the stored journal are not run again, which is what makes recovery cheap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from homesec import metrics
from homesec.errors import (
    FilterError,
    NotifyError,
    PipelineError,
    RetriesSpent,
    UploadError,
    VLMError,
)
from homesec.interfaces import (
    AlertPolicy,
    AnalysisContext,
    ObjectFilter,
    StorageBackend,
    VLMAnalyzer,
)
from homesec.models.alert import Alert, AlertDecision, SystemAlert
from homesec.models.clip import Clip, analysis_name, snapshot_name
from homesec.models.config import Config
from homesec.models.enums import EventType, StageName, StageStatus
from homesec.models.events import utc_now
from homesec.models.results import AnalysisResult, FilterResult, UploadOutcome
from homesec.models.state import ClipStateData
from homesec.pipeline.detection import DetectionAnnouncer, vlm_skip_reason
from homesec.pipeline.journal import ClipJournal
from homesec.pipeline.notify import NotificationFanout
from homesec.pipeline.retry import retrying
from homesec.pipeline.snapshot import snapshot_of
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

ResultT = TypeVar("ResultT")
ErrorT = TypeVar("ErrorT", bound=PipelineError)


class ClipPipeline:
    def __init__(
        self,
        config: Config,
        *,
        repository: ClipRepository,
        storage: StorageBackend,
        object_filter: ObjectFilter,
        analyzer: VLMAnalyzer | None,
        alert_policy: AlertPolicy | None,
        fanout: NotificationFanout,
    ) -> None:
        self._config = config
        self._repository = repository
        self._storage = storage
        self._filter = object_filter
        self._analyzer = analyzer
        self._policy = alert_policy
        self._fanout = fanout
        self.detections = DetectionAnnouncer(
            config.vlm, fanout, analyzer_configured=analyzer is not None
        )
        limits = config.concurrency
        self._clip_slots = asyncio.Semaphore(limits.max_clips_in_flight)
        self._stage_slots = {
            StageName.UPLOAD: asyncio.Semaphore(limits.upload_workers),
            StageName.FILTER: asyncio.Semaphore(limits.filter_workers),
            StageName.VLM: asyncio.Semaphore(limits.vlm_workers),
            StageName.NOTIFY: asyncio.Semaphore(limits.notify_workers),
        }
        self._tasks: dict[str, asyncio.Task[ClipStateData | None]] = {}
        self._waiting = 0  # clips waiting for a slot under max_clips_in_flight
        self._upload_retries: dict[str, asyncio.Task[None]] = {}
        self.last_heartbeat = time.time()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def uploads_pending(self) -> int:
        return len(self._upload_retries)

    def submit(self, clip: Clip) -> asyncio.Task[ClipStateData | None] | None:
        """Source callback: process the clip in the background (None if already in hand)."""
        if clip.clip_id in self._tasks or clip.clip_id in self._upload_retries:
            logger.debug("Clip %s already in hand", clip.clip_id)
            return None
        task = asyncio.create_task(self._process_guarded(clip), name=f"clip:{clip.clip_id}")
        self._tasks[clip.clip_id] = task
        metrics.set_in_flight(len(self._tasks))
        task.add_done_callback(lambda _: self._forget(clip.clip_id))
        return task

    def _forget(self, clip_id: str) -> None:
        self._tasks.pop(clip_id, None)
        metrics.set_in_flight(len(self._tasks))

    async def process(self, clip: Clip) -> ClipStateData:
        """Run one clip through every stage it still needs; returns its state at the end."""
        self._waiting += 1
        metrics.set_queue_depth(self._waiting)
        try:
            await self._clip_slots.acquire()
        finally:
            self._waiting -= 1
            metrics.set_queue_depth(self._waiting)
        try:
            self.last_heartbeat = time.time()
            journal = await ClipJournal.open(clip, self._repository)
            try:
                await self._run(clip, journal)
                journal.finish()
            finally:
                await journal.flush()
            metrics.clip_finished(clip.camera_name, journal.state.status)
            logger.info(
                "Clip %s %s: %s",
                clip.clip_id,
                journal.state.status,
                _outcome(journal.state),
                extra=_extra(clip, EventType.CLIP_DONE),
            )
            return journal.state
        finally:
            self._clip_slots.release()

    async def drain(self, timeout_s: float) -> None:
        """Give in-flight clips `timeout_s` to finish, then cancel the rest (recovered later)."""
        for retry in self._upload_retries.values():
            retry.cancel()  # their clips are unfinished, so recovery picks them up
        pending = list(self._tasks.values())
        still_running: set[asyncio.Task[ClipStateData | None]] = set()
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=timeout_s)
        for task in still_running:
            task.cancel()
        if still_running:
            logger.warning("Cancelled %d unfinished clips at shutdown", len(still_running))
        leftovers = [*still_running, *self._upload_retries.values()]
        await asyncio.gather(*leftovers, return_exceptions=True)

    async def system_alert(self, alert: SystemAlert) -> None:
        """Log a system alert and send it to the sinks that take them."""
        logger.error(
            "System alert: %s",
            alert.message,
            extra={
                "event_type": EventType.SYSTEM_ALERT,
                "clip_id": alert.clip_id,
                "camera_name": alert.camera_name,
            },
        )
        await self._fanout.broadcast_system(alert)

    async def _process_guarded(self, clip: Clip) -> ClipStateData | None:
        # The top of a clip's flow: nothing may escape and kill the process.
        try:
            return await self.process(clip)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Unexpected error processing %s", clip.clip_id)
            return None

    async def _run(self, clip: Clip, journal: ClipJournal) -> None:
        upload = asyncio.create_task(self._upload(clip, journal), name=f"upload:{clip.clip_id}")
        try:
            filter_result = await self._filter_stage(clip, journal)
        finally:
            # Uploading is P0: it finishes even when the filter fails.
            upload_result = await upload
        if isinstance(upload_result, UploadError):
            self._retry_upload_in_background(clip, journal)
        if filter_result is None:
            return
        target = clip.local_path.with_name(snapshot_name(clip.clip_id))
        snapshot = await snapshot_of(clip.local_path, filter_result, target, _extra(clip, None))
        detection = asyncio.create_task(
            self._detection_event(clip, journal, filter_result, snapshot),
            name=f"detection:{clip.clip_id}",
        )
        try:
            analysis = await self._vlm(clip, journal, filter_result)
        finally:
            await detection
        decision = self._decide(clip.camera_name, filter_result, analysis)
        journal.record(EventType.ALERT_DECIDED, decision.notify_reason, alert_decision=decision)
        await asyncio.gather(
            self._notify(clip, journal, decision, upload_result, analysis, snapshot),
            self._store_artifacts(clip, journal, upload_result, snapshot),
        )

    async def _upload(self, clip: Clip, journal: ClipJournal) -> UploadOutcome | UploadError:
        state = journal.state
        if journal.is_ok(StageName.UPLOAD) and state.storage_uri:
            return UploadOutcome(storage_uri=state.storage_uri, view_url=state.view_url)
        backend = self._config.storage.backend
        result = await self._stage(
            journal,
            StageName.UPLOAD,
            lambda: self._storage.put(clip.local_path, f"{clip.camera_name}/{clip.clip_id}"),
            lambda exc: UploadError(clip.clip_id, backend, exc),
            exhausted=StageStatus.PENDING,
        )
        match result:
            case UploadOutcome() as outcome:
                journal.stage_ok(
                    StageName.UPLOAD, storage_uri=outcome.storage_uri, view_url=outcome.view_url
                )
            case UploadError() as error:
                logger.error(
                    "Upload failed; continuing without a storage URI, retrying in the "
                    "background: %s",
                    error.describe(),
                    extra=_extra(clip, EventType.STAGE_FAILED),
                )
        return result

    def _retry_upload_in_background(self, clip: Clip, journal: ClipJournal) -> None:
        task = asyncio.create_task(
            self._upload_until_done(clip, journal), name=f"upload-retry:{clip.clip_id}"
        )
        self._upload_retries[clip.clip_id] = task
        task.add_done_callback(lambda _: self._upload_retries.pop(clip.clip_id, None))

    async def _upload_until_done(self, clip: Clip, journal: ClipJournal) -> None:
        """Retry the upload with growing waits until it succeeds; the clip is kept meanwhile."""
        retry = self._config.retry
        delay = max(retry.backoff_s, 0.01)
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry.upload_retry_max_backoff_s)
            journal.attempt_started(StageName.UPLOAD)
            try:
                async with self._stage_slots[StageName.UPLOAD]:
                    outcome = await self._storage.put(
                        clip.local_path, f"{clip.camera_name}/{clip.clip_id}"
                    )
            except Exception as exc:
                error = UploadError(clip.clip_id, self._config.storage.backend, exc)
                journal.attempt_failed(error, then=StageStatus.PENDING)
                continue
            journal.stage_ok(
                StageName.UPLOAD, storage_uri=outcome.storage_uri, view_url=outcome.view_url
            )
            logger.info(
                "Upload of %s succeeded after %d attempts",
                clip.clip_id,
                journal.state.stage(StageName.UPLOAD).attempts,
                extra=_extra(clip, EventType.STAGE_COMPLETED),
            )
            snapshot = clip.local_path.with_name(snapshot_name(clip.clip_id))
            await self._store_artifacts(clip, journal, outcome, snapshot)
            journal.finish()
            await journal.flush()
            return

    async def _filter_stage(self, clip: Clip, journal: ClipJournal) -> FilterResult | None:
        if journal.is_ok(StageName.FILTER) and journal.state.filter_result is not None:
            return journal.state.filter_result
        backend = self._config.filter.backend
        result = await self._stage(
            journal,
            StageName.FILTER,
            lambda: self._filter.detect(clip.local_path),
            lambda exc: FilterError(clip.clip_id, backend, exc),
        )
        match result:
            case FilterError() as error:
                logger.error(
                    "Filter failed; no alert can be decided: %s",
                    error.describe(),
                    extra=_extra(clip, EventType.STAGE_FAILED),
                )
                return None
            case FilterResult() as detections:
                journal.stage_ok(StageName.FILTER, filter_result=detections)
                return detections

    async def _detection_event(
        self,
        clip: Clip,
        journal: ClipJournal,
        filter_result: FilterResult,
        snapshot: Path | None,
    ) -> None:
        """The first signal, as soon as the detector found a trigger class: sent now unless
        it went out while the clip was recorded, or before a restart."""
        if journal.state.detection_sent_at is None and not journal.is_ok(StageName.VLM):
            announcement = await self.detections.announce(
                clip.clip_id, clip.camera_name, filter_result, snapshot, live=False
            )
            if announcement is not None:
                journal.record(
                    EventType.DETECTION_SENT,
                    announcement.describe(),
                    detection_sent_at=announcement.sent_at,
                )
        self.detections.forget(clip.clip_id)

    async def _vlm(
        self, clip: Clip, journal: ClipJournal, filter_result: FilterResult
    ) -> AnalysisResult | None:
        if journal.is_ok(StageName.VLM) and journal.state.analysis_result is not None:
            return journal.state.analysis_result
        analyzer = self._analyzer
        skip_reason = vlm_skip_reason(self._config.vlm, filter_result.detected_classes)
        if analyzer is None or skip_reason is not None:
            journal.stage_skipped(StageName.VLM, skip_reason or "no analyzer")
            return None
        context = AnalysisContext(
            clip_id=clip.clip_id, camera_name=clip.camera_name, start_ts=clip.start_ts
        )
        backend = self._config.vlm.backend or ""
        result = await self._stage(
            journal,
            StageName.VLM,
            lambda: analyzer.analyze(clip.local_path, filter_result, context),
            lambda exc: VLMError(clip.clip_id, backend, exc),
        )
        match result:
            case VLMError() as error:
                logger.error(
                    "VLM failed; deciding without analysis: %s",
                    error.describe(),
                    extra=_extra(clip, EventType.STAGE_FAILED),
                )
                return None
            case AnalysisResult() as analysis:
                journal.stage_ok(StageName.VLM, analysis_result=analysis)
                return analysis

    def _decide(
        self, camera_name: str, filter_result: FilterResult, analysis: AnalysisResult | None
    ) -> AlertDecision:
        if self._policy is None:
            return AlertDecision(notify=False, notify_reason="alert policy disabled")
        return self._policy.decide(camera_name, filter_result, analysis)

    async def _notify(
        self,
        clip: Clip,
        journal: ClipJournal,
        decision: AlertDecision,
        upload: UploadOutcome | UploadError,
        analysis: AnalysisResult | None,
        snapshot: Path | None,
    ) -> None:
        if journal.is_ok(StageName.NOTIFY):
            return
        if not decision.notify:
            journal.stage_skipped(StageName.NOTIFY, decision.notify_reason)
            return
        if not self._fanout.notifiers:
            journal.stage_skipped(StageName.NOTIFY, "no notifiers configured")
            return
        alert = _alert_for(clip, decision, upload, analysis)
        journal.attempt_started(StageName.NOTIFY)
        started = time.perf_counter()
        async with self._stage_slots[StageName.NOTIFY]:
            failures = await self._fanout.deliver(alert, snapshot, journal)
        metrics.stage_observed(StageName.NOTIFY, time.perf_counter() - started, ok=not failures)
        if not failures:
            journal.stage_ok(StageName.NOTIFY)
            return
        for failure in failures:
            logger.error("Notify failed: %s", failure.describe(), extra=_extra(clip, None))
        sinks = ", ".join(failure.notifier_name for failure in failures)
        error = NotifyError(clip.clip_id, sinks, failures[0].cause)
        journal.attempt_failed(error, then=StageStatus.ERROR)
        await self._stage_gave_up(journal.state, error)

    async def _store_artifacts(
        self,
        clip: Clip,
        journal: ClipJournal,
        upload: UploadOutcome | UploadError,
        snapshot: Path | None,
    ) -> None:
        """Keep the analysis and the snapshot next to the clip in storage (best effort)."""
        if isinstance(upload, UploadError):
            return  # stored once the background upload succeeds
        state = journal.state
        analysis = state.analysis_result
        try:
            if analysis is not None and state.analysis_uri is None:
                key = f"{clip.camera_name}/{analysis_name(clip.clip_id)}"
                stored = await self._storage.put_json(analysis.model_dump(mode="json"), key)
                journal.record(EventType.ARTIFACT_STORED, key, analysis_uri=stored.storage_uri)
            if (
                snapshot is not None
                and state.snapshot_uri is None
                and await asyncio.to_thread(snapshot.exists)
            ):
                key = f"{clip.camera_name}/{snapshot.name}"
                stored = await self._storage.put(snapshot, key)
                journal.record(EventType.ARTIFACT_STORED, key, snapshot_uri=stored.storage_uri)
        except Exception as exc:
            logger.warning("Could not store the artifacts of %s: %s", clip.clip_id, exc)

    async def _stage(
        self,
        journal: ClipJournal,
        stage: StageName,
        call: Callable[[], Awaitable[ResultT]],
        wrap: Callable[[Exception], ErrorT],
        exhausted: StageStatus = StageStatus.ERROR,
    ) -> ResultT | ErrorT:
        """Run one stage with retries, journaling every attempt; errors come back as values."""
        max_attempts = self._config.retry.max_attempts
        try:
            async for attempt in retrying(self._config.retry):
                with attempt:
                    number = journal.attempt_started(stage)
                    started = time.perf_counter()
                    try:
                        async with self._stage_slots[stage]:
                            result = await call()
                    except Exception as exc:
                        metrics.stage_observed(stage, time.perf_counter() - started, ok=False)
                        final = number >= max_attempts or isinstance(exc, RetriesSpent)
                        then = exhausted if final else None
                        if then is None:
                            metrics.retry(stage)
                        journal.attempt_failed(wrap(exc), then=then)
                        raise
                    metrics.stage_observed(stage, time.perf_counter() - started, ok=True)
                    return result
        except Exception as exc:
            error = wrap(exc)
            await self._stage_gave_up(journal.state, error)
            return error
        raise AssertionError("retrying() ended without a result or an error")

    async def _stage_gave_up(self, state: ClipStateData, error: PipelineError) -> None:
        await self.system_alert(
            SystemAlert(
                kind="stage_retries_exhausted",
                message=f"{error.stage} gave up after {state.stage(error.stage).attempts} "
                f"attempt(s): {error.describe()}",
                ts=utc_now(),
                clip_id=state.clip_id,
                camera_name=state.camera_name,
                stage=error.stage,
            )
        )


def _alert_for(
    clip: Clip,
    decision: AlertDecision,
    upload: UploadOutcome | UploadError,
    analysis: AnalysisResult | None,
) -> Alert:
    outcome = upload if isinstance(upload, UploadOutcome) else None
    return Alert(
        clip_id=clip.clip_id,
        camera_name=clip.camera_name,
        storage_uri=outcome.storage_uri if outcome else None,
        view_url=outcome.view_url if outcome else None,
        risk_level=analysis.risk_level if analysis else None,
        activity_type=analysis.activity_type if analysis else None,
        notify_reason=decision.notify_reason,
        summary=analysis.summary if analysis else None,
        ts=utc_now(),
        dedupe_key=clip.clip_id,
        upload_failed=outcome is None,
    )


def _outcome(state: ClipStateData) -> str:
    """What a person following the log wants to know of a finished clip, in one line."""
    found = state.filter_result.detected_classes if state.filter_result else []
    parts = [f"detected {', '.join(found)}" if found else "nothing detected"]
    if state.analysis_result is not None:
        parts.append(f"risk {state.analysis_result.risk_level.label}")
    decision = state.alert_decision
    if decision is not None:
        parts.append(f"alert sent ({decision.notify_reason})" if decision.notify else "no alert")
    return "; ".join(parts)


def _extra(clip: Clip, event_type: EventType | None) -> dict[str, str]:
    extra = {"clip_id": clip.clip_id, "camera_name": clip.camera_name}
    if event_type is not None:
        extra["event_type"] = event_type
    return extra
