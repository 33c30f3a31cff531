"""ClipPipeline: one async flow per clip, from local file to notification.

    upload ─┐ (in parallel, each retried with backoff)
    filter ─┴─> snapshot -> VLM (per run_mode) -> alert policy -> notifiers (after the upload)
                        └─> detection event (unless it went out while the clip was recorded)

Stages return their result or a PipelineError (errors as values). A filter error stops the
clip; upload, VLM and notify errors do not. A VLM that failed on a clip with a trigger class
leaves the alert policy an `AnalysisUnavailable`, so a person is still an alert when the AI
is down. Stages already `ok` in the journal are not run again, which is what makes recovery
and the background rounds (`reruns.py`) cheap: a clip that is not done after its round
(upload failed, a stage in error) is processed again later, from a copy downloaded from
storage when its local file was pruned meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homesec import metrics
from homesec.errors import CausedError, FilterError, NotifyError, UploadError, VLMError
from homesec.interfaces import (
    AlertPolicy,
    AnalysisContext,
    AnalysisListener,
    ObjectFilter,
    RelevanceFilter,
    StorageBackend,
    VLMAnalyzer,
)
from homesec.models.alert import Alert, AlertDecision, SystemAlert
from homesec.models.clip import Clip, LiveSegment, analysis_name, snapshot_name
from homesec.models.config import Config
from homesec.models.enums import ActionRefusal, EventType, StageName, StageStatus
from homesec.models.events import ClipEvent, utc_now
from homesec.models.results import (
    ActionRefused,
    AnalysisResult,
    AnalysisUnavailable,
    FilterOverrides,
    FilterResult,
    UploadOutcome,
)
from homesec.models.state import ClipStateData, StageLog
from homesec.modes import Modes
from homesec.pipeline.deletion import delete_clip
from homesec.pipeline.detection import DetectionAnnouncer, vlm_skip_reason
from homesec.pipeline.fetch import clip_from_state, fetch_from_storage, remove_local
from homesec.pipeline.journal import ClipJournal, ClipJournals
from homesec.pipeline.notify import NotificationFanout
from homesec.pipeline.providers import ProviderStats, VLMProviders
from homesec.pipeline.reruns import Reruns
from homesec.pipeline.snapshot import snapshot_of
from homesec.pipeline.stages import StageRunner, log_extra
from homesec.pipeline.stationary import StationaryObjects
from homesec.repository.clip_repository import ClipRepository
from homesec.vlm_budget import DailyBudget

logger = logging.getLogger(__name__)

Analysis = AnalysisResult | AnalysisUnavailable | None
"""What the VLM stage leaves the alert policy: a result, why there is none, or skipped."""


@dataclass(frozen=True)
class Situation:
    """What holds for a camera's clip now: the mode, and why its alerts are off (if so)."""

    mode: str | None
    quiet: str | None


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
        modes: Modes | None = None,
        budget: DailyBudget | None = None,
    ) -> None:
        self._config = config
        self._repository = repository
        self._modes = modes
        self._budget = budget
        self._storage = storage
        self._filter = object_filter
        self._analyzer = analyzer
        self._policy = alert_policy
        self._fanout = fanout
        self.journals = ClipJournals(repository)
        self._stationary = StationaryObjects(config.stationary, repository)
        self.detections = DetectionAnnouncer(
            config.vlm, fanout, analyzer_configured=analyzer is not None
        )
        limits = config.concurrency
        self._clip_slots = asyncio.Semaphore(limits.max_clips_in_flight)
        self._stages = StageRunner(
            config.retry,
            {
                StageName.UPLOAD: asyncio.Semaphore(limits.upload_workers),
                StageName.FILTER: asyncio.Semaphore(limits.filter_workers),
                StageName.VLM: asyncio.Semaphore(limits.vlm_workers),
                StageName.NOTIFY: asyncio.Semaphore(limits.notify_workers),
            },
            self.system_alert,
        )
        self._reruns = Reruns(config.retry, lambda clip, state: self.submit(clip, known=state))
        self._work_dir = config.pipeline.work_dir
        self._tasks: dict[str, asyncio.Task[ClipStateData | None]] = {}
        self._listeners: dict[str, AnalysisListener] = {}
        self._round_watchers: list[Callable[[ClipStateData], None]] = []
        self._zones = {camera.name: camera.zones for camera in config.cameras}
        self._contexts = {camera.name: camera.context for camera in config.cameras}
        self._waiting = 0  # clips waiting for a slot under max_clips_in_flight
        self.last_heartbeat = time.time()

    def vlm_stats(self) -> list[ProviderStats]:
        """Each configured VLM's work since start (with fallbacks; else none)."""
        return self._analyzer.stats() if isinstance(self._analyzer, VLMProviders) else []

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def failing_stages(self) -> dict[StageName, str]:
        """Stages whose last outcome was giving up, with why (until they next succeed)."""
        return dict(self._stages.failing)

    def busy(self, clip_id: str) -> bool:
        """Whether the clip is being processed now (its local file must stay)."""
        return clip_id in self._tasks

    def submit(
        self, clip: Clip, known: ClipStateData | None = None
    ) -> asyncio.Task[ClipStateData | None] | None:
        """Source callback: process the clip in the background (None if already in hand).

        Its later rounds, if it needs any, are scheduled when this one ends. `known`: the
        clip's state as this process last left it (a later round goes on from it, whatever
        the database can say right now).
        """
        if clip.clip_id in self._tasks:
            logger.debug("Clip %s already in hand", clip.clip_id)
            return None
        self._reruns.forget(clip.clip_id)
        task = asyncio.create_task(self._process_guarded(clip, known), name=f"clip:{clip.clip_id}")
        self._tasks[clip.clip_id] = task
        metrics.set_in_flight(len(self._tasks))
        task.add_done_callback(lambda _: self._forget(clip.clip_id))
        return task

    def _forget(self, clip_id: str) -> None:
        self._tasks.pop(clip_id, None)
        metrics.set_in_flight(len(self._tasks))

    async def process(self, clip: Clip, known: ClipStateData | None = None) -> ClipStateData:
        """Run one round of the clip through every stage it still needs; returns its state.

        It goes on from `known` when given, else from the stored state (or a new one).
        """
        self._waiting += 1
        metrics.set_queue_depth(self._waiting)
        try:
            await self._clip_slots.acquire()
        finally:
            self._waiting -= 1
            metrics.set_queue_depth(self._waiting)
        try:
            self.last_heartbeat = time.time()
            async with self.journals.hold(
                clip.clip_id, clip.camera_name, clip.local_path, known=known
            ) as journal:
                journal.received(clip)
                ended = await self._round(clip, journal)
            state = journal.state  # saved (or kept for the database's return) from here
            for watcher in self._round_watchers:
                watcher(state)
            if ended is not None:
                metrics.clip_finished(clip.camera_name, state.status)
            logger.info(
                "Clip %s %s: %s",
                clip.clip_id,
                state.status,
                _outcome(state),
                extra=log_extra(clip.clip_id, clip.camera_name, ended),
            )
            return state
        finally:
            self._clip_slots.release()

    async def _round(self, clip: Clip, journal: ClipJournal) -> EventType | None:
        """Run the stages the clip still needs, from a downloaded copy if its local file is
        gone; the lifecycle event that ended the round (clip_done once, clip_failed)."""
        local = clip
        if not await asyncio.to_thread(clip.local_path.exists):
            fetched = await fetch_from_storage(journal.state, self._storage, self._work_dir)
            if fetched is None:
                why = (
                    "its download failed; a later round tries again"
                    if journal.state.is_uploaded
                    else "its local file is gone and it is not in storage"
                )
                logger.error(
                    "%s cannot be processed now: %s",
                    clip.clip_id,
                    why,
                    extra=log_extra(clip.clip_id, clip.camera_name),
                )
                return None
            local = fetched
        try:
            await self._run(local, journal)
        finally:
            if local is not clip:
                await asyncio.to_thread(remove_local, local)
        return journal.finish()

    async def drain(self, timeout_s: float) -> None:
        """Give in-flight clips `timeout_s` to finish, then cancel the rest (recovered later)."""
        await self._reruns.aclose()  # their clips are unfinished: recovery picks them up
        pending = list(self._tasks.values())
        still_running: set[asyncio.Task[ClipStateData | None]] = set()
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=timeout_s)
        for task in still_running:
            task.cancel()
        if still_running:
            logger.warning("Cancelled %d unfinished clips at shutdown", len(still_running))
        await asyncio.gather(*still_running, return_exceptions=True)

    async def system_alert(self, alert: SystemAlert) -> bool:
        """Log a system alert and send it to the sinks that take them; whether one took it."""
        logger.error(
            "System alert: %s",
            alert.message,
            extra=log_extra(alert.clip_id, alert.camera_name, EventType.SYSTEM_ALERT),
        )
        return await self._fanout.broadcast_system(alert)

    async def _process_guarded(
        self, clip: Clip, known: ClipStateData | None
    ) -> ClipStateData | None:
        # The top of a clip's flow: nothing may escape and kill the process.
        self._reruns.begin_round(clip.clip_id)
        try:
            state = await self.process(clip, known)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Unexpected error processing %s", clip.clip_id)
            return None
        if not state.is_uploaded and not await asyncio.to_thread(clip.local_path.exists):
            return state  # gone, and never in storage: no later round can do anything
        self._reruns.after_round(clip, state)
        return state

    async def _run(self, clip: Clip, journal: ClipJournal) -> None:
        upload = asyncio.create_task(self._upload(clip, journal), name=f"upload:{clip.clip_id}")
        try:
            filter_result = await self._filter_stage(clip, journal)
        finally:
            # Uploading is P0: it finishes even when the filter fails.
            upload_result = await upload
        if filter_result is None:
            return
        analysed_before = journal.is_ok(StageName.VLM)
        situation = self.situation(clip.camera_name)
        # What counts from here on: the detections the policy keeps (its required zones).
        counted = self._counted(clip.camera_name, filter_result, situation)
        shown = counted if counted.detections else filter_result
        target = clip.local_path.with_name(snapshot_name(clip.clip_id))
        extra = log_extra(clip.clip_id, clip.camera_name)
        snapshot = await snapshot_of(clip.local_path, shown, target, extra)
        detection = asyncio.create_task(
            self._detection_event(clip, journal, counted, snapshot),
            name=f"detection:{clip.clip_id}",
        )
        try:
            analysis = await self._vlm(clip, journal, counted, situation.quiet)
        finally:
            await detection
        decision = self._decision(clip.camera_name, journal, counted, analysis, situation)
        await asyncio.gather(
            self._notify(clip, journal, decision, upload_result, analysis, snapshot),
            self._store_artifacts(clip, journal, upload_result, snapshot),
            self._tell_source(clip, None if analysed_before else analysis),
        )

    async def _upload(self, clip: Clip, journal: ClipJournal) -> UploadOutcome | UploadError:
        state = journal.state
        if journal.is_ok(StageName.UPLOAD) and state.storage_uri:
            return UploadOutcome(storage_uri=state.storage_uri, view_url=state.view_url)
        result = await self._stages.run(
            journal,
            UploadError,
            self._config.storage.backend,
            lambda: self._storage.put(clip.local_path, f"{clip.camera_name}/{clip.clip_id}"),
            "continuing without a storage URI, retrying in the background",
            exhausted=StageStatus.PENDING,
        )
        if isinstance(result, UploadOutcome):
            journal.upload_ok(result)
        return result

    async def _filter_stage(self, clip: Clip, journal: ClipJournal) -> FilterResult | None:
        if journal.is_ok(StageName.FILTER) and journal.state.filter_result is not None:
            return journal.state.filter_result
        if clip.source_detections is not None:
            marked = await self.mark_stationary(clip, clip.source_detections)
            journal.filter_ok(marked)
            return marked
        if not self._may_retry(journal, StageName.FILTER):
            return None
        result = await self._stages.run(
            journal,
            FilterError,
            self._config.filter.backend,
            lambda: self._filter.detect(clip.local_path, self.filter_overrides(clip.camera_name)),
            "no alert can be decided",
        )
        if isinstance(result, FilterError):
            return None
        marked = await self.mark_stationary(clip, result)
        journal.filter_ok(marked)
        return marked

    async def _detection_event(
        self,
        clip: Clip,
        journal: ClipJournal,
        filter_result: FilterResult,
        snapshot: Path | None,
    ) -> None:
        """The first signal, as soon as the detector found a trigger class: sent now unless
        it went out while the clip was recorded, or before a restart."""
        state = journal.state
        if (
            state.detection_sent_at is None
            and state.reanalysed_at is None
            and not journal.is_ok(StageName.VLM)
        ):
            announcement = await self.detections.announce(
                clip.clip_id, clip.camera_name, filter_result, snapshot, live=False
            )
            if announcement is not None:
                journal.detection_sent(announcement.sent_at, announcement.describe())
        self.detections.forget(clip.clip_id)

    async def _vlm(
        self, clip: Clip, journal: ClipJournal, filter_result: FilterResult, quiet: str | None
    ) -> Analysis:
        state = journal.state
        if journal.is_ok(StageName.VLM) and state.analysis_result is not None:
            return state.analysis_result
        analyzer = self._analyzer
        skip_reason = quiet or vlm_skip_reason(self._config.vlm, filter_result.detected_classes)
        if analyzer is None or skip_reason is not None:
            journal.stage_skipped(StageName.VLM, skip_reason or "no analyzer")
            return None
        if not self._may_retry(journal, StageName.VLM):
            return self._unavailable(filter_result, "failed in an earlier round")
        if self._budget is not None and (spent := self._budget.exhausted()) is not None:
            journal.stage_skipped(StageName.VLM, spent)
            return self._unavailable(filter_result, spent)
        context = AnalysisContext(
            clip_id=clip.clip_id,
            camera_name=clip.camera_name,
            start_ts=clip.start_ts,
            camera_context=self._contexts.get(clip.camera_name),
            known=self._config.vlm.known,
        )
        result = await self._stages.run(
            journal,
            VLMError,
            self._config.vlm.backend or "",
            lambda: analyzer.analyze(clip.local_path, filter_result, context),
            "deciding without analysis",
        )
        if self._budget is not None:
            await self._budget.spent(result.usage if isinstance(result, AnalysisResult) else None)
        if isinstance(result, VLMError):
            return self._unavailable(filter_result, _short_reason(result))
        journal.vlm_ok(result)
        return result

    def filter_overrides(self, camera_name: str) -> FilterOverrides | None:
        """What the filter is told of the camera: its zones, if it has any, and to look at
        the whole clip when stationary objects are marked (an intruder may come later)."""
        zones = self._zones.get(camera_name) or None
        full_scan = self._stationary.enabled or None
        if zones is None and full_scan is None:
            return None
        return FilterOverrides(zones=zones, full_scan=full_scan)

    async def mark_stationary(
        self, clip: Clip | LiveSegment, filter_result: FilterResult
    ) -> FilterResult:
        """The result with the detections that have not moved since earlier clips marked."""
        return await self._stationary.mark(
            clip.camera_name, clip.clip_id, clip.start_ts, filter_result
        )

    def situation(self, camera_name: str) -> Situation:
        """The mode in effect, and whether the camera's alerts are off (by its switch, or
        by the policy in this mode)."""
        state = self._modes.state if self._modes is not None else None
        mode = state.mode if state is not None else None
        in_mode = f" in mode {mode}" if mode else ""
        if state is not None and not state.alerts_on(camera_name):
            return Situation(mode, f"alerts of {camera_name} switched off")
        policy = self._policy
        if isinstance(policy, RelevanceFilter) and not policy.alerts_on(camera_name, mode):
            return Situation(mode, f"alerts off for {camera_name}{in_mode}")
        return Situation(mode, None)

    def relevant(self, camera_name: str, filter_result: FilterResult) -> FilterResult:
        """The detections that count for the camera now: none while its alerts are off,
        else those that moved, and of them those the policy keeps (its required zones)."""
        return self._counted(camera_name, filter_result, self.situation(camera_name))

    def _counted(
        self, camera_name: str, filter_result: FilterResult, situation: Situation
    ) -> FilterResult:
        if situation.quiet is not None:
            return filter_result.keeping([])
        moving = [d for d in filter_result.detections if not d.stationary]
        if len(moving) < len(filter_result.detections):
            filter_result = filter_result.keeping(moving)
        if isinstance(self._policy, RelevanceFilter):
            return self._policy.relevant(camera_name, filter_result, situation.mode)
        return filter_result

    async def delete(self, state: ClipStateData) -> ActionRefused | None:
        """Delete a clip everywhere (`deletion.py`); refused while it is processed, or waits
        for a later round (its local file may be all there is)."""
        if self.busy(state.clip_id) or not state.is_settled:
            return ActionRefused(
                reason=ActionRefusal.IN_FLIGHT,
                message=f"{state.clip_id} is still being processed; try again when it is done",
            )
        self._reruns.forget(state.clip_id)
        return await delete_clip(state, self._storage, self._repository)

    async def reanalyse(self, state: ClipStateData) -> ActionRefused | None:
        """Run the detector, the VLM and the alert policy again on a settled clip, with the
        config of now; the round sends no detection event and no alert (the clip is old).
        Refused while the clip is processed, or when the request cannot be recorded."""
        if self.busy(state.clip_id) or not state.is_settled:
            return ActionRefused(
                reason=ActionRefusal.IN_FLIGHT,
                message=f"{state.clip_id} is still being processed; try again when it is done",
            )
        again = state.model_copy(deep=True)
        for stage in (StageName.FILTER, StageName.VLM, StageName.NOTIFY):
            again.stages[stage] = StageLog()
        again.filter_result = again.analysis_result = again.alert_decision = None
        again.reanalysed_at = utc_now()
        event = ClipEvent(
            clip_id=state.clip_id,
            event_type=EventType.REANALYSIS_REQUESTED,
            camera_name=state.camera_name,
        )
        if not await self._repository.save(again, event):
            return ActionRefused(
                reason=ActionRefusal.NOT_WRITTEN,
                message="the state database did not take the request",
            )
        local = Path(state.local_path)
        clip = await asyncio.to_thread(clip_from_state, again, local)
        self._reruns.forget(state.clip_id)
        self.submit(clip, known=again)
        return None

    def after_rounds(self, watcher: Callable[[ClipStateData], None]) -> None:
        """Call `watcher` with the clip's state after each round (on the event loop)."""
        self._round_watchers.append(watcher)

    def listen(self, camera_name: str, listener: AnalysisListener) -> None:
        """Tell `listener` (the camera's source) of each new analysis of the camera's clips."""
        self._listeners[camera_name] = listener

    async def _tell_source(self, clip: Clip, analysis: Analysis) -> None:
        listener = self._listeners.get(clip.camera_name)
        if listener is None or not isinstance(analysis, AnalysisResult):
            return
        try:
            await listener.analysis_ready(clip, analysis)
        except Exception as exc:
            logger.warning(
                "The source of %s was not told of its analysis: %s",
                clip.clip_id,
                exc,
                extra=log_extra(clip.clip_id, clip.camera_name),
            )

    def _unavailable(self, filter_result: FilterResult, reason: str | None) -> AnalysisUnavailable:
        found = [c for c in filter_result.detected_classes if c in self._config.vlm.trigger_classes]
        return AnalysisUnavailable(reason=reason or "unknown error", trigger_classes=found)

    def _may_retry(self, journal: ClipJournal, stage: StageName) -> bool:
        """A stage in error is tried again only within the clip's error rounds."""
        failed = journal.state.stage(stage).status == StageStatus.ERROR
        return not failed or self._reruns.retries_errors(journal.clip_id)

    def _decision(
        self,
        camera_name: str,
        journal: ClipJournal,
        filter_result: FilterResult,
        analysis: Analysis,
        situation: Situation,
    ) -> AlertDecision:
        """The alert policy's decision, with the mode that made it; kept as it was once the
        alert went out, to any sink: a later round (after a restart, in another mode) must
        not leave the other sinks without it."""
        stored = journal.state.alert_decision
        went_out = journal.is_ok(StageName.NOTIFY) or bool(journal.state.alerted_sinks)
        if went_out and stored is not None:
            return stored
        if self._policy is None:
            decision = AlertDecision(notify=False, notify_reason="alert policy disabled")
        elif situation.quiet is not None:
            decision = AlertDecision(notify=False, notify_reason=situation.quiet)
        else:
            decision = self._policy.decide(camera_name, filter_result, analysis, situation.mode)
        decision = decision.model_copy(update={"mode": situation.mode})
        journal.alert_decided(decision)
        return decision

    async def _notify(
        self,
        clip: Clip,
        journal: ClipJournal,
        decision: AlertDecision,
        upload: UploadOutcome | UploadError,
        analysis: Analysis,
        snapshot: Path | None,
    ) -> None:
        if journal.is_ok(StageName.NOTIFY):
            return
        if journal.state.reanalysed_at is not None:
            journal.stage_skipped(StageName.NOTIFY, "analysed again at a person's request")
            return
        if not decision.notify:
            journal.stage_skipped(StageName.NOTIFY, decision.notify_reason)
            return
        if not self._fanout.notifiers:
            journal.stage_skipped(StageName.NOTIFY, "no notifiers configured")
            return
        if not self._may_retry(journal, StageName.NOTIFY):
            return
        result = analysis if isinstance(analysis, AnalysisResult) else None
        alert = _alert_for(clip, decision, upload, result)
        journal.attempt_started(StageName.NOTIFY)
        started = time.perf_counter()
        async with self._stages.slot(StageName.NOTIFY):
            failures = await self._fanout.deliver(alert, snapshot, journal)
        metrics.stage_observed(StageName.NOTIFY, time.perf_counter() - started, ok=not failures)
        if not failures:
            journal.notify_ok()
            self._stages.succeeded(StageName.NOTIFY)
            return
        for failure in failures:
            logger.error(
                "Notify failed: %s",
                failure.describe(),
                extra=log_extra(clip.clip_id, clip.camera_name),
            )
        sinks = ", ".join(failure.plugin_name for failure in failures)
        error = NotifyError(clip.clip_id, sinks, failures[0].cause)
        journal.attempt_failed(error, then=StageStatus.ERROR)
        await self._stages.gave_up(journal, error)

    async def _store_artifacts(
        self,
        clip: Clip,
        journal: ClipJournal,
        upload: UploadOutcome | UploadError,
        snapshot: Path | None,
    ) -> None:
        """Keep the analysis and the snapshot next to the clip in storage (best effort)."""
        if isinstance(upload, UploadError):
            return  # stored in the round after the upload succeeds
        state = journal.state
        analysis = state.analysis_result
        try:
            if analysis is not None and state.analysis_uri is None:
                key = f"{clip.camera_name}/{analysis_name(clip.clip_id)}"
                stored = await self._storage.put_json(analysis.model_dump(mode="json"), key)
                journal.analysis_stored(key, stored.storage_uri)
            if (
                snapshot is not None
                and state.snapshot_uri is None
                and await asyncio.to_thread(snapshot.exists)
            ):
                key = f"{clip.camera_name}/{snapshot.name}"
                stored = await self._storage.put(snapshot, key)
                journal.snapshot_stored(key, stored.storage_uri)
        except Exception as exc:
            logger.warning("Could not store the artifacts of %s: %s", clip.clip_id, exc)


def _short_reason(error: VLMError) -> str:
    """What went wrong in a few words a person may read in an alert: the analyzer's own
    summary (no addresses, no server text), else the error's first words."""
    cause = error.cause
    if isinstance(cause, CausedError) and cause.summary:
        return cause.summary
    reason = (str(cause) or type(cause).__name__) if cause is not None else str(error)
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"


_REASON_CHARS = 80


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
    reason = f" ({decision.notify_reason})" if decision is not None else ""
    if state.alerted_sinks:
        parts.append(f"alert sent to {', '.join(state.alerted_sinks)}{reason}")
    elif decision is not None and decision.notify:
        parts.append(f"alert decided but no sink took it{reason}")
    elif decision is not None:
        parts.append("no alert")
    if state.upload_failed:
        parts.append("upload failed, retried in the background")
    return "; ".join(parts)
