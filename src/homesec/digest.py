"""The digest: at a time of day, and when the mode turns to `on_mode` (home), one message of
what happened since the last one, sent to the notifiers configured with `digest: true`.

The period's clips are counted per camera and activity, and the ones worth a look listed
(alerted, high risk, or waiting for a review), the riskiest first. With an analyzer that
writes text (`TextWriter`), the model tells the period in a few sentences from the clips'
summaries; without one, or when it keeps failing, a plain list does. A digest is kept in
the state database (`settings`) from the moment it is written until every sink has it:
a sink that fails is tried again every `retry_s`, across restarts, and a sink that has it
never gets it again; the next period starts where the delivered one ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from homesec.interfaces import DigestSink, ModeControl, Notifier, TextWriter, VLMAnalyzer
from homesec.models.digest import Digest, DigestClip, DigestConfig, DigestState
from homesec.models.enums import DigestTrigger, RiskLevel, SettingKey
from homesec.models.events import utc_now
from homesec.models.modes import ModeState
from homesec.models.queries import ClipFilter, PageKey
from homesec.repository.clip_repository import ClipListing, ClipRepository
from homesec.vlm_budget import DailyBudget

logger = logging.getLogger(__name__)

_FIRST_PERIOD = timedelta(days=1)  # the first digest ever tells the last day
_MAX_CLIPS = 2000  # read per digest; a period with more is counted from these
_PAGE = 200
_WRITER_TRIES = 3
_INSTRUCTIONS = (
    "You write the digest of a home security system for the people who live there: what "
    "its cameras saw in the period below, in a few short plain sentences. Say how many clips "
    "and alerts there were, name the events worth a look (with their camera and time) and "
    "anything unusual; do not invent anything the material does not say. No greeting, no "
    "list markup."
)


class Digests:
    """Writes and delivers the digests; `start()` before use, `aclose()` at shutdown."""

    def __init__(
        self,
        config: DigestConfig,
        repository: ClipRepository,
        sinks: Sequence[tuple[str, DigestSink]],
        writer: VLMAnalyzer | None,
        *,
        budget: DailyBudget | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._repository = repository
        self._sinks = dict(sinks)
        self._writer = writer if isinstance(writer, TextWriter) else None
        self._budget = budget
        self._clock = clock
        self._zone: tzinfo | None = ZoneInfo(config.timezone) if config.timezone else None
        self._state = DigestState()
        self._wake = asyncio.Event()
        self._due: DigestTrigger | None = None
        self._task: asyncio.Task[None] | None = None
        self._modes: ModeControl | None = None
        self._last_mode: str | None = None

    @classmethod
    def sinks_of(
        cls, notifiers: Sequence[Notifier], wanted: Sequence[str]
    ) -> list[tuple[str, DigestSink]]:
        """The notifiers named in `wanted` that can take a digest."""
        return [(n.name, n) for n in notifiers if n.name in wanted and isinstance(n, DigestSink)]

    def follow_modes(self, modes: ModeControl) -> None:
        """A digest when the mode changes to `on_mode` (before `start`)."""
        self._modes = modes
        modes.listen(self._mode_changed)

    async def start(self) -> None:
        """Start after the modes: the mode then is the one a change is measured from."""
        if self._modes is not None:
            self._last_mode = self._modes.state.mode
        self._task = asyncio.create_task(self._run(), name="digest")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def send_now(self, trigger: DigestTrigger) -> None:
        """Write and send a digest of the time since the last one, in the background."""
        self._due = trigger
        self._wake.set()

    async def _mode_changed(self, state: ModeState) -> None:
        turned = state.mode == self._config.on_mode and self._last_mode != state.mode
        self._last_mode = state.mode
        if turned:
            self.send_now(DigestTrigger.MODE)

    async def _run(self) -> None:
        while True:  # until the database says what was sent (else a digest could go twice)
            if await self._load():
                break
            await asyncio.sleep(self._config.retry_s)
        while True:
            try:
                if self._state.pending is not None:
                    await self._deliver()
                if self._state.pending is None and self._due is not None:
                    trigger, self._due = self._due, None
                    await self._write(trigger)
                    continue
            except Exception:
                # A bug must not stop the digests for good: log it, wait, go on.
                logger.exception("The digest failed; trying again in %g s", self._config.retry_s)
                await asyncio.sleep(self._config.retry_s)
                continue
            await self._sleep()

    async def _sleep(self) -> None:
        """Until the next daily time, a request, or the next retry of a pending digest."""
        wait_s = self._config.retry_s if self._state.pending is not None else None
        upcoming = self._next_daily()
        if upcoming is not None:
            until_daily = max(0.0, (upcoming - self._clock()).total_seconds())
            wait_s = until_daily if wait_s is None else min(wait_s, until_daily)
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), wait_s)
        except TimeoutError:
            if upcoming is not None and self._clock() >= upcoming and self._due is None:
                self._due = DigestTrigger.SCHEDULE

    async def _load(self) -> bool:
        stored = await self._repository.load_setting(SettingKey.DIGEST)
        if stored is None:
            return False  # the database cannot say: a digest now might go out twice
        if stored.document is not None:
            try:
                self._state = DigestState.model_validate(stored.document)
            except ValidationError as exc:
                logger.error("The stored digest state is unreadable, starting afresh: %s", exc)
        return True

    async def _save(self) -> bool:
        document = self._state.model_dump(mode="json")
        return await self._repository.save_setting(SettingKey.DIGEST, document)

    async def _write(self, trigger: DigestTrigger) -> None:
        end = self._clock()
        start = self._state.last_end or end - _FIRST_PERIOD
        states = await self._clips(start, end)
        if states is None:
            self._due = self._due or trigger  # the database is down: try again later
            await asyncio.sleep(self._config.retry_s)
            return
        digest = await self._compose(trigger, start, end, states)
        self._state = DigestState(last_end=self._state.last_end, pending=digest)
        if not await self._save():
            # Not kept: sending it now could send it twice after a restart.
            self._state = DigestState(last_end=self._state.last_end)
            self._due = self._due or trigger
            await asyncio.sleep(self._config.retry_s)

    async def _deliver(self) -> None:
        digest = self._state.pending
        assert digest is not None
        for name, sink in self._sinks.items():
            if name in self._state.delivered:
                continue
            try:
                await sink.send_digest(digest)
            except Exception as exc:
                logger.warning("Digest not delivered to %s (tried again later): %s", name, exc)
                continue
            self._state.delivered.append(name)
            await self._save()
        if all(name in self._state.delivered for name in self._sinks):
            logger.info(
                "Digest of %s to %s sent (%d clips, %d alerts)",
                digest.period_start.isoformat(timespec="minutes"),
                digest.period_end.isoformat(timespec="minutes"),
                digest.clips,
                digest.alerts,
            )
            self._state = DigestState(last_end=digest.period_end)
            await self._save()

    async def _clips(self, start: datetime, end: datetime) -> list[ClipListing] | None:
        found: list[ClipListing] = []
        after: PageKey | None = None
        period = ClipFilter(since=start, until=end)
        while len(found) < _MAX_CLIPS:
            page = await self._repository.list_clips(period, limit=_PAGE, after=after)
            if page is None:
                return None
            found += page.items
            if page.next_key is None:
                break
            after = page.next_key
        return found

    async def _compose(
        self, trigger: DigestTrigger, start: datetime, end: datetime, clips: list[ClipListing]
    ) -> Digest:
        states = [clip.state for clip in clips]
        alerted = [s for s in states if s.alert_decision is not None and s.alert_decision.notify]
        activities = Counter(
            s.analysis_result.activity_type for s in states if s.analysis_result is not None
        )
        digest = Digest(
            period_start=start,
            period_end=end,
            trigger=trigger,
            clips=len(states),
            alerts=len(alerted),
            per_camera=dict(Counter(s.camera_name for s in states)),
            activities=dict(activities.most_common()),
            notable=_notable(clips, self._config.max_notable),
            text="",
            written_by="template",
        )
        text = self._template(digest)
        spent = self._budget.exhausted() if self._budget is not None else None
        if self._writer is not None and states and spent is not None:
            text += f"\n(No AI summary: the {spent}.)"
        elif self._writer is not None and states:
            written = await self._written(digest, clips)
            if written is not None:
                return digest.model_copy(update={"text": written[0], "written_by": written[1]})
            text += "\n(The AI summary could not be written; this is the plain list.)"
        return digest.model_copy(update={"text": text})

    async def _written(self, digest: Digest, clips: list[ClipListing]) -> tuple[str, str] | None:
        writer = self._writer
        assert writer is not None
        material = self._material(digest, clips)
        for attempt in range(1, _WRITER_TRIES + 1):
            try:
                text = await writer.write(_INSTRUCTIONS, material)
                return text.strip(), type(writer).__name__
            except Exception as exc:
                logger.warning("The digest's text failed (try %d): %s", attempt, exc)
            finally:
                if self._budget is not None:
                    await self._budget.spent(None)
                if attempt < _WRITER_TRIES:
                    await asyncio.sleep(self._config.retry_s)
        return None

    def _material(self, digest: Digest, clips: list[ClipListing]) -> str:
        lines = [
            f"Period: {self._when(digest.period_start)} to {self._when(digest.period_end)}",
            f"Clips: {digest.clips}, alerts: {digest.alerts}",
            "Clips with an analysis, oldest first:",
        ]
        for clip in sorted(clips, key=_started):
            analysis = clip.state.analysis_result
            if analysis is None:
                continue
            known = ", ".join(entity.name for entity in analysis.known_entities)
            lines.append(
                f"- {self._when(_started(clip))} {clip.state.camera_name}: {analysis.summary} "
                f"(activity {analysis.activity_type}, risk {analysis.risk_level}"
                f"{', known: ' + known if known else ''})"
            )
        return "\n".join(lines)

    def _template(self, digest: Digest) -> str:
        cameras = ", ".join(f"{name} {count}" for name, count in sorted(digest.per_camera.items()))
        lines = [
            f"{self._when(digest.period_start)} to {self._when(digest.period_end)}: "
            f"{digest.clips} clips, {digest.alerts} alerts"
            + (f" ({cameras})" if cameras else "")
            + "."
        ]
        if digest.notable:
            lines.append("Worth a look:")
        for clip in digest.notable:
            risk = f"{clip.risk_level} risk, " if clip.risk_level is not None else ""
            lines.append(
                f"- {self._when(clip.ts)} {clip.camera_name}: {risk}"
                f"{clip.summary or clip.activity_type or 'no analysis'}"
            )
        return "\n".join(lines)

    def _when(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%a %d %b %H:%M")

    def _next_daily(self) -> datetime | None:
        at = self._config.at
        if at is None:
            return None
        today = self._clock().astimezone(self._zone).date()
        for day in (today, today + timedelta(days=1)):
            moment = self._moment(day)
            if moment > self._clock():
                return moment
        return None

    def _moment(self, day: date) -> datetime:
        assert self._config.at is not None
        naive = datetime.combine(day, self._config.at)
        return naive.replace(tzinfo=self._zone) if self._zone else naive.astimezone()


def _started(clip: ClipListing) -> datetime:
    return clip.state.start_ts or clip.received_at


def _notable(clips: list[ClipListing], limit: int) -> list[DigestClip]:
    """The clips worth a look: alerted, high risk or waiting for review; riskiest first."""

    def worth(clip: ClipListing) -> bool:
        state = clip.state
        analysis = state.analysis_result
        alerted = state.alert_decision is not None and state.alert_decision.notify
        high = analysis is not None and analysis.risk_level >= RiskLevel.HIGH
        return alerted or high or state.needs_review

    def risk(clip: ClipListing) -> int:
        analysis = clip.state.analysis_result
        return int(analysis.risk_level) if analysis is not None else -1

    chosen = sorted(filter(worth, clips), key=lambda c: (-risk(c), _started(c)))[:limit]
    return [
        DigestClip(
            clip_id=clip.state.clip_id,
            camera_name=clip.state.camera_name,
            ts=_started(clip),
            risk_level=analysis.risk_level if analysis else None,
            activity_type=analysis.activity_type if analysis else None,
            summary=analysis.summary if analysis else None,
            alerted=clip.state.alert_decision is not None and clip.state.alert_decision.notify,
            link=clip.state.view_url,
        )
        for clip in chosen
        for analysis in [clip.state.analysis_result]
    ]
