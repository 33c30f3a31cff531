"""One clip's state as it moves through the stages, persisted through ClipRepository.

The in-memory `ClipStateData` is the truth while the clip is processed (the database may be
down). Every change is a typed transition (`upload_ok(outcome)`, `filter_ok(result)`, ...)
saved with the lifecycle event that explains it. Saves are written behind the clip's flow:
changes made while a write is in flight are coalesced into the next one (latest snapshot,
every event in order), so the database is never on a clip's critical path. `flush()` waits
until everything is written.

A clip has one journal at a time, handed out by `ClipJournals` to whoever changes the clip:
early detection while it is recorded, the pipeline once it is finalized. So each clip has
one writer, and nobody overwrites a newer state with an older one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from pydantic import JsonValue

from homesec.errors import PipelineError
from homesec.models.alert import AlertDecision
from homesec.models.clip import Clip
from homesec.models.enums import ClipStatus, EventType, StageName, StageStatus
from homesec.models.events import ClipEvent, utc_now
from homesec.models.results import AnalysisResult, FilterResult, UploadOutcome
from homesec.models.state import ClipStateData, StageLog
from homesec.repository.clip_repository import ClipRepository
from homesec.single_flight import SingleFlight, SingleRun


class ClipJournal:
    def __init__(self, state: ClipStateData, repository: ClipRepository) -> None:
        self.state = state
        self._repository = repository
        self._unsaved: list[ClipEvent] = []
        self._writer = SingleRun()

    @property
    def clip_id(self) -> str:
        return self.state.clip_id

    def is_ok(self, stage: StageName) -> bool:
        return self.state.is_stage_ok(stage)

    def received(self, clip: Clip) -> None:
        """The finalized clip is in the pipeline's hands: new, or back after a restart."""
        state = self.state
        state.local_path = str(clip.local_path)
        if state.has_started():
            self._save(EventType.CLIP_RECOVERED, message=str(clip.local_path))
            return
        # New to the pipeline; its detection event may have gone out while it recorded.
        state.source_backend = clip.source_backend
        state.start_ts = clip.start_ts
        self._save(EventType.CLIP_RECEIVED, message=str(clip.local_path))

    def attempt_started(self, stage: StageName) -> int:
        log = self._log(stage)
        log.status = StageStatus.RUNNING
        log.attempts += 1
        log.started_at = utc_now()
        log.finished_at = None
        self._save(EventType.STAGE_STARTED, stage=stage, attempt=log.attempts)
        return log.attempts

    def attempt_failed(self, error: PipelineError, *, then: StageStatus | None) -> None:
        """An attempt failed; `then` is the stage's status from now on (None: retry follows).

        A stage left PENDING after its last inline attempt is retried in the background.
        """
        log = self._log(error.stage)
        log.last_error = error.describe()
        if then is not None:
            log.status = then
            log.finished_at = utc_now()
        event = EventType.STAGE_RETRY if then is None else EventType.STAGE_FAILED
        self._save(event, stage=error.stage, attempt=log.attempts, message=log.last_error)

    def upload_ok(self, outcome: UploadOutcome) -> None:
        self.state.storage_uri = outcome.storage_uri
        self.state.view_url = outcome.view_url
        self._stage_ok(StageName.UPLOAD)

    def filter_ok(self, result: FilterResult) -> None:
        self.state.filter_result = result
        self._stage_ok(StageName.FILTER)

    def vlm_ok(self, analysis: AnalysisResult) -> None:
        self.state.analysis_result = analysis
        self._stage_ok(StageName.VLM)

    def notify_ok(self) -> None:
        self._stage_ok(StageName.NOTIFY)

    def stage_skipped(self, stage: StageName, reason: str) -> None:
        log = self._log(stage)
        log.status = StageStatus.SKIPPED
        log.finished_at = utc_now()
        self._save(EventType.STAGE_SKIPPED, stage=stage, message=reason)

    def alert_decided(self, decision: AlertDecision) -> None:
        self.state.alert_decision = decision
        self._save(EventType.ALERT_DECIDED, message=decision.notify_reason)

    def analysis_stored(self, key: str, uri: str) -> None:
        self.state.analysis_uri = uri
        self._save(EventType.ARTIFACT_STORED, message=key)

    def snapshot_stored(self, key: str, uri: str) -> None:
        self.state.snapshot_uri = uri
        self._save(EventType.ARTIFACT_STORED, message=key)

    def detection_sent(self, sent_at: datetime, sinks: str) -> None:
        """The clip's one detection event went out (recorded once, whoever saw it go)."""
        if self.state.detection_sent_at is not None:
            return
        self.state.detection_sent_at = sent_at
        self._save(EventType.DETECTION_SENT, message=sinks)

    def system_alerted(self, stage: StageName, message: str) -> None:
        """A system alert told of this stage giving up: it is not told again for this clip."""
        if stage not in self.state.system_alerted:
            self.state.system_alerted.append(stage)
        self._save(EventType.SYSTEM_ALERT, stage=stage, message=message)

    def sink_status(self, sink: str) -> StageStatus | None:
        log = self.state.notifications.get(sink)
        return None if log is None else log.status

    def sink_done(
        self, sink: str, status: StageStatus, message: str | None, attempts: int = 0
    ) -> None:
        """Journal one notification sink's outcome for this clip."""
        now = utc_now()
        self.state.notifications[sink] = StageLog(
            status=status, attempts=attempts, finished_at=now, last_error=message
        )
        self._save(
            _SINK_EVENTS[status],
            stage=StageName.NOTIFY,
            message=f"{sink}: {message or status}",
            detail={"sink": sink},
        )

    def finish(self) -> EventType | None:
        """The end of a processing round: `clip_done` the first time the clip is done,
        `clip_failed` for a round that ends in error; returns the event, if any."""
        state = self.state
        match state.status:
            case ClipStatus.DONE if state.done_at is None:
                state.done_at = utc_now()
                self._save(EventType.CLIP_DONE, message=ClipStatus.DONE)
                return EventType.CLIP_DONE
            case ClipStatus.ERROR:
                failed = [str(stage) for stage, log in state.stages.items() if log.last_error]
                self._save(EventType.CLIP_FAILED, message=", ".join(failed))
                return EventType.CLIP_FAILED
        return None

    async def flush(self) -> None:
        """Wait until every change so far is written (or dropped by the repository)."""
        await self._writer.wait()

    def _stage_ok(self, stage: StageName) -> None:
        log = self._log(stage)
        log.status = StageStatus.OK
        log.finished_at = utc_now()
        log.last_error = None
        self._save(EventType.STAGE_COMPLETED, stage=stage, attempt=log.attempts)

    def _log(self, stage: StageName) -> StageLog:
        return self.state.stages.setdefault(stage, StageLog())

    def _save(
        self,
        event_type: EventType,
        *,
        stage: StageName | None = None,
        attempt: int | None = None,
        message: str | None = None,
        detail: dict[str, JsonValue] | None = None,
    ) -> None:
        event = ClipEvent(
            clip_id=self.state.clip_id,
            event_type=event_type,
            camera_name=self.state.camera_name,
            stage=stage,
            attempt=attempt,
            message=message,
            detail=detail or {},
        )
        self._unsaved.append(event)
        # A write in flight takes this change too: it writes until nothing is unsaved.
        self._writer.start(self._write, name=f"journal:{self.clip_id}")

    async def _write(self) -> None:
        while self._unsaved:
            events, self._unsaved = self._unsaved, []
            await self._repository.save(self.state, *events)


_SINK_EVENTS = {
    StageStatus.OK: EventType.STAGE_COMPLETED,
    StageStatus.ERROR: EventType.STAGE_FAILED,
    StageStatus.SKIPPED: EventType.STAGE_SKIPPED,
}


@dataclass
class _Held:
    journal: ClipJournal
    users: int = 0


class ClipJournals:
    """The journal of each clip someone is changing: one per clip, shared while held."""

    def __init__(self, repository: ClipRepository) -> None:
        self._repository = repository
        self._held: dict[str, _Held] = {}
        self._loading: SingleFlight[str, ClipStateData | None] = SingleFlight()

    @asynccontextmanager
    async def hold(
        self,
        clip_id: str,
        camera_name: str,
        local_path: Path,
        *,
        known: ClipStateData | None = None,
    ) -> AsyncIterator[ClipJournal]:
        """The clip's journal: the one held by someone else, else one on `known` (the state
        this process last left it in), else on its stored state, else on a new one.

        Released (and written) when the last holder is done.
        """
        held = self._held.get(clip_id)
        if held is None and known is not None:
            held = self._held[clip_id] = _Held(ClipJournal(known, self._repository))
        elif held is None:
            held = await self._acquire(clip_id, camera_name, local_path)
        held.users += 1
        try:
            yield held.journal
        finally:
            held.users -= 1
            if held.users == 0:
                await held.journal.flush()
                if held.users == 0 and self._held.get(clip_id) is held:
                    del self._held[clip_id]

    async def _acquire(self, clip_id: str, camera_name: str, local_path: Path) -> _Held:
        if (held := self._held.get(clip_id)) is not None:
            return held
        load = partial(self._repository.get, clip_id)
        stored = await self._loading.call(clip_id, load, name=f"load:{clip_id}")
        if (held := self._held.get(clip_id)) is not None:
            return held  # another caller loaded it while this one waited
        if stored is not None:
            state = stored  # a fresh parse, or the one unsaved object of the clip
        else:
            state = ClipStateData(
                clip_id=clip_id, camera_name=camera_name, local_path=str(local_path)
            )
        held = _Held(ClipJournal(state, self._repository))
        self._held[clip_id] = held
        return held
