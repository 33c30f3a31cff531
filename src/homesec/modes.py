"""The mode HomeSec is in (home, away, night...) and the cameras whose alerts are off.

Set by hand (MQTT, Home Assistant, the API, the UI) or by the weekly schedule: a mode set by
hand holds until the schedule's next change. The state is kept in the state database
(`settings`, through `ClipRepository`), so it survives restarts; while the database is down
this process goes on with what it knows and writes it once it can. A change made while
HomeSec was stopped is caught up at start: a schedule change that fell due meanwhile wins
over the mode stored before it. Listeners (notifiers that show the mode) hear of every change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from homesec.interfaces import ModeListener
from homesec.models.enums import ModeSetter, SettingKey, Weekday
from homesec.models.events import utc_now
from homesec.models.modes import ModeChange, ModeRefused, ModesConfig, ModeState
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)

_TICK_S = 30.0  # how often the schedule, and a write or read the database missed, are retried
_DAYS_LOOKED_AT = 8  # a weekly schedule has a change within any 8 days


class Modes:
    """The mode in effect and the per-camera alert switches; `start()` before use."""

    def __init__(
        self,
        config: ModesConfig,
        camera_names: list[str],
        repository: ClipRepository,
        *,
        clock: Callable[[], datetime] = utc_now,
        tick_s: float = _TICK_S,
    ) -> None:
        if not config.names:
            raise ValueError("Modes needs at least one mode name")
        self._config = config
        self._cameras = list(camera_names)
        self._repository = repository
        self._clock = clock
        self._tick_s = tick_s
        self._zone: tzinfo | None = ZoneInfo(config.timezone) if config.timezone else None
        self._state = self._scheduled(None)
        self._loaded = False  # the stored state was read (or known to be absent)
        self._unsaved = False
        self._save_lock = asyncio.Lock()
        self._saver: asyncio.Task[None] | None = None
        self._listeners: list[ModeListener] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def names(self) -> list[str]:
        return list(self._config.names)

    @property
    def camera_names(self) -> list[str]:
        return list(self._cameras)

    @property
    def state(self) -> ModeState:
        return self._state

    def listen(self, listener: ModeListener) -> None:
        """Call `listener` with the new state after every change."""
        self._listeners.append(listener)

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._follow(), name="modes")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        saver, self._saver = self._saver, None
        if saver is not None:
            await asyncio.gather(saver, return_exceptions=True)  # bounded by the write timeout
        if self._unsaved:
            await self._save()

    async def set_mode(self, mode: str, by: ModeSetter) -> ModeState | ModeRefused:
        if mode not in self._config.names:
            # Cut: the name comes from outside (an MQTT payload) and goes into logs.
            reason = f"unknown mode {_shown(mode)} (one of {', '.join(self.names)})"
            return ModeRefused(reason=reason)
        await self._change(self._state.model_copy(update=_setting(mode, self._clock(), by)))
        return self._state

    async def set_alerts(
        self, camera_name: str, on: bool, by: ModeSetter
    ) -> ModeState | ModeRefused:
        """Switch a camera's alerts on or off in every mode (the mode itself is kept)."""
        if camera_name not in self._cameras:
            return ModeRefused(reason=f"unknown camera {_shown(camera_name)}")
        off = [name for name in self._state.alerts_off if name != camera_name]
        if not on:
            off.append(camera_name)
        logger.info("Alerts of %s switched %s by %s", camera_name, "on" if on else "off", by)
        await self._change(self._state.model_copy(update={"alerts_off": sorted(off)}))
        return self._state

    async def _change(self, state: ModeState, *, save: bool = True) -> None:
        if state.mode != self._state.mode:
            logger.info("Mode %s -> %s (set by %s)", self._state.mode, state.mode, state.set_by)
        self._state = state
        self._loaded = True  # what is set now wins over a state stored before
        if save:
            self._unsaved = True
            self._save_soon()
        for listener in self._listeners:
            try:
                await listener(state)
            except Exception as exc:
                logger.warning("A mode listener failed: %s", exc)

    def _save_soon(self) -> None:
        """Write the state in the background: no change waits on the database (a command on
        MQTT would hold up the next one), and a burst of changes costs a write at a time."""
        if self._saver is None or self._saver.done():
            self._saver = asyncio.create_task(self._save(), name="modes-save")

    async def _save(self) -> None:
        """Write the latest state until what is stored is the latest (or a write fails: the
        schedule's next tick tries again)."""
        async with self._save_lock:
            while self._unsaved:
                state = self._state
                document = state.model_dump(mode="json")
                if not await self._repository.save_setting(SettingKey.MODE, document):
                    return
                if state is self._state:
                    self._unsaved = False

    async def _load(self) -> bool:
        """Adopt the stored state; False when the database cannot say, or when a change was
        made while it was read (that change is newer than anything stored)."""
        stored = await self._repository.load_setting(SettingKey.MODE)
        if self._loaded:
            return False
        if stored is None:
            logger.warning("Mode unknown until the state database answers: %s", self._state.mode)
            return False
        self._loaded = True
        state = _parse(stored.document)
        if state is None:
            return True  # nothing stored (or unreadable): the state at hand holds
        known = [name for name in state.alerts_off if name in self._cameras]
        if state.mode in self._config.names:
            state = state.model_copy(update={"alerts_off": known})
            self._state = self._scheduled(state)
        else:
            # The stored mode is gone from the config; the switches set by hand still hold.
            self._state = self._state.model_copy(update={"alerts_off": known})
        logger.info(
            "Mode %s (set by %s at %s)",
            self._state.mode,
            self._state.set_by,
            self._state.set_at.isoformat(timespec="seconds"),
        )
        return True

    async def _follow(self) -> None:
        """Apply schedule changes as they fall due; retry what the database missed."""
        while True:
            await asyncio.sleep(self._sleep_s())
            try:
                await self._follow_once()
            except Exception:
                # A bug here must not stop the schedule for good: log it, go on.
                logger.exception("Following the mode schedule failed; trying again")

    async def _follow_once(self) -> None:
        if not self._loaded and await self._load():
            await self._change(self._state, save=False)
        if self._unsaved:
            await self._save()
        scheduled = self._scheduled(self._state)
        if scheduled is not self._state:
            await self._change(scheduled)

    def _sleep_s(self) -> float:
        upcoming = self._next_change()
        if upcoming is None:
            return self._tick_s
        return max(0.0, min(self._tick_s, (upcoming - self._clock()).total_seconds()))

    def _scheduled(self, state: ModeState | None) -> ModeState:
        """`state` unless a schedule change fell due after it was set (then that change)."""
        now = self._clock()
        last = self._last_change(now)
        if state is not None and (last is None or last[0] <= state.set_at):
            return state
        if last is None:
            return ModeState(**_setting(self._config.names[0], now, ModeSetter.INITIAL))
        at, change = last
        kept = state.alerts_off if state is not None else []
        return ModeState(**_setting(change.mode, at, ModeSetter.SCHEDULE), alerts_off=kept)

    def _last_change(self, now: datetime) -> tuple[datetime, ModeChange] | None:
        """The latest schedule change at or before `now` (of two at once, the later listed)."""
        latest: tuple[datetime, ModeChange] | None = None
        for at, change in self._changes_around(now):  # by day, then as listed
            if at <= now and (latest is None or at >= latest[0]):
                latest = (at, change)
        return latest

    def _next_change(self) -> datetime | None:
        now = self._clock()
        upcoming = [at for at, _ in self._changes_around(now) if at > now]
        return min(upcoming, default=None)

    def _changes_around(self, now: datetime) -> list[tuple[datetime, ModeChange]]:
        today = self._local(now).date()
        days = [today + timedelta(days=offset) for offset in range(-_DAYS_LOOKED_AT, 2)]
        return [
            (self._moment(day, change), change)
            for day in days
            for change in self._config.schedule
            if _weekday(day) in change.days
        ]

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self._zone)

    def _moment(self, day: date, change: ModeChange) -> datetime:
        naive = datetime.combine(day, change.at)
        # Without a zone, the machine's own (DST included) is the one `astimezone` assumes.
        return naive.replace(tzinfo=self._zone) if self._zone else naive.astimezone()


def _shown(name: str) -> str:
    """A name from outside (an MQTT payload or topic), cut for a log line."""
    return repr(name[:40]) + ("..." if len(name) > 40 else "")


def _setting(mode: str, at: datetime, by: ModeSetter) -> dict[str, object]:
    return {"mode": mode, "set_at": at, "set_by": by}


def _weekday(day: date) -> Weekday:
    return list(Weekday)[day.weekday()]


def _parse(document: dict[str, object] | None) -> ModeState | None:
    if document is None:
        return None
    try:
        return ModeState.model_validate(document)
    except ValidationError as exc:
        logger.error("The stored mode is unreadable, starting afresh: %s", exc)
        return None
