"""One clip's state as it moves through the stages, persisted through ClipRepository.

The in-memory `ClipStateData` is the truth while the clip is processed (the database may be
down); every change is saved with the lifecycle event that explains it. Saves are written
behind the clip's flow by one writer per clip: changes made while a write is in flight are
coalesced into the next one (latest snapshot, every event in order), so the database is
never on a clip's critical path. `flush()` waits until everything is written.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import JsonValue

from homesec.errors import PipelineError
from homesec.models.clip import Clip
from homesec.models.enums import EventType, StageName, StageStatus
from homesec.models.events import ClipEvent, utc_now
from homesec.models.state import ClipStateData, StageLog
from homesec.repository.clip_repository import ClipRepository


class ClipJournal:
    def __init__(self, state: ClipStateData, repository: ClipRepository) -> None:
        self.state = state
        self._repository = repository
        self._unsaved: list[ClipEvent] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, clip: Clip, repository: ClipRepository) -> ClipJournal:
        """Resume the stored state of a clip (recovery) or start a new one."""
        stored = await repository.get(clip.clip_id)
        if stored is None or not stored.has_started():
            # New to the pipeline; its detection event may have gone out while it recorded.
            state = ClipStateData(
                clip_id=clip.clip_id,
                camera_name=clip.camera_name,
                source_backend=clip.source_backend,
                local_path=str(clip.local_path),
                start_ts=clip.start_ts,
                detection_sent_at=stored.detection_sent_at if stored else None,
            )
            event = EventType.CLIP_RECEIVED
        else:
            state = stored.model_copy(update={"local_path": str(clip.local_path)}, deep=True)
            event = EventType.CLIP_RECOVERED
        journal = cls(state, repository)
        journal._save(event, message=str(clip.local_path))
        return journal

    @property
    def clip_id(self) -> str:
        return self.state.clip_id

    def is_ok(self, stage: StageName) -> bool:
        return self.state.is_stage_ok(stage)

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

    def stage_ok(self, stage: StageName, **results: Any) -> None:
        log = self._log(stage)
        log.status = StageStatus.OK
        log.finished_at = utc_now()
        log.last_error = None
        for field, value in results.items():
            setattr(self.state, field, value)
        self._save(EventType.STAGE_COMPLETED, stage=stage, attempt=log.attempts)

    def stage_skipped(self, stage: StageName, reason: str) -> None:
        log = self._log(stage)
        log.status = StageStatus.SKIPPED
        log.finished_at = utc_now()
        self._save(EventType.STAGE_SKIPPED, stage=stage, message=reason)

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

    def record(self, event_type: EventType, message: str, **fields: Any) -> None:
        """Store results that belong to no single stage (the alert decision), with an event."""
        for field, value in fields.items():
            setattr(self.state, field, value)
        self._save(event_type, message=message)

    def finish(self) -> None:
        self._save(EventType.CLIP_DONE, message=str(self.state.status))

    async def flush(self) -> None:
        """Wait until every change so far is written (or dropped by the repository)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

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
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name=f"journal:{self.clip_id}")

    async def _write(self) -> None:
        while self._unsaved:
            events, self._unsaved = self._unsaved, []
            await self._repository.save(self.state, *events)


_SINK_EVENTS = {
    StageStatus.OK: EventType.STAGE_COMPLETED,
    StageStatus.ERROR: EventType.STAGE_FAILED,
    StageStatus.SKIPPED: EventType.STAGE_SKIPPED,
}
