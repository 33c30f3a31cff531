"""The mode: set by hand or by the weekly schedule, kept across restarts and outages."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from homesec.models.config import StateStoreConfig
from homesec.models.enums import ModeSetter, Weekday
from homesec.models.modes import ModeChange, ModeRefused, ModesConfig, ModeState
from homesec.modes import Modes
from homesec.repository.clip_repository import ClipRepository
from tests.repository.builders import DSN_ENV, state_store_config
from tests.services.postgres import ThrowawayPostgres

BERLIN = ZoneInfo("Europe/Berlin")
CAMERAS = ["front_door", "backyard"]
# Monday 7 December 2026
MONDAY = datetime(2026, 12, 7, tzinfo=BERLIN)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _config(*schedule: ModeChange) -> ModesConfig:
    return ModesConfig(
        names=["home", "away", "night"], schedule=list(schedule), timezone="Europe/Berlin"
    )


@asynccontextmanager
async def _running(
    state_config: StateStoreConfig, config: ModesConfig, clock: Callable[[], datetime]
) -> AsyncIterator[Modes]:
    """Modes over a freshly started repository, as HomeSec starts them; closed after."""
    repository = ClipRepository.from_config(state_config)
    await repository.start()
    modes = Modes(config, CAMERAS, repository, clock=clock, tick_s=0.05)
    await modes.start()
    try:
        yield modes
    finally:
        await modes.aclose()
        await repository.aclose()


async def _until(modes: Modes, mode: str, timeout_s: float = 5.0) -> ModeState:
    async with asyncio.timeout(timeout_s):
        while modes.state.mode != mode:
            await asyncio.sleep(0.02)
    return modes.state


async def test_the_first_mode_holds_until_one_is_set_and_the_set_one_survives_a_restart(
    state_config: StateStoreConfig,
) -> None:
    # Given modes without a schedule, started on an empty database
    clock = Clock(MONDAY.replace(hour=12))
    async with _running(state_config, _config(), clock) as modes:
        first = modes.state

        # When the API sets `away` and HomeSec restarts an hour later
        set_state = await modes.set_mode("away", ModeSetter.API)
        clock.now += timedelta(hours=1)
    async with _running(state_config, _config(), clock) as restarted:
        # Then it starts in the first mode, and after the restart it is still away, set by
        # the API at the time it was set
        assert (first.mode, first.set_by) == ("home", ModeSetter.INITIAL)
        assert set_state == restarted.state
        assert (restarted.state.mode, restarted.state.set_by) == ("away", ModeSetter.API)
        assert restarted.state.set_at == MONDAY.replace(hour=12)


async def test_an_unknown_mode_or_camera_is_refused_and_changes_nothing(
    state_config: StateStoreConfig,
) -> None:
    # Given modes in `home`
    async with _running(state_config, _config(), Clock(MONDAY)) as modes:
        before = modes.state

        # When a mode that is not configured, and the switch of an unknown camera, are set
        bad_mode = await modes.set_mode("holiday", ModeSetter.MQTT)
        bad_camera = await modes.set_alerts("garage", False, ModeSetter.MQTT)

        # Then both are refused, saying why, and the state is what it was
        assert isinstance(bad_mode, ModeRefused) and "holiday" in bad_mode.reason
        assert isinstance(bad_camera, ModeRefused) and "garage" in bad_camera.reason
        assert modes.state == before


async def test_the_schedule_changes_the_mode_at_its_time_and_a_hand_set_mode_holds_until_the_next(
    state_config: StateStoreConfig,
) -> None:
    # Given a schedule: night at 22:00 every day, home at 07:00 on weekdays; Monday 21:59
    schedule = (
        ModeChange(at="22:00", mode="night"),
        ModeChange(at="07:00", mode="home", days=[Weekday.MON, Weekday.TUE, Weekday.WED]),
    )
    clock = Clock(MONDAY.replace(hour=21, minute=59))
    async with _running(state_config, _config(*schedule), clock) as modes:
        seen = [modes.state]
        changes: list[ModeState] = []

        async def heard(state: ModeState) -> None:
            changes.append(state)

        modes.listen(heard)

        # When the clock passes 22:00, a person sets `away` at 23:00, and the clock moves on to
        # 06:59 and then 07:00 on Tuesday
        clock.now = MONDAY.replace(hour=22, minute=0, second=1)
        seen.append(await _until(modes, "night"))
        clock.now = MONDAY.replace(hour=23)
        await modes.set_mode("away", ModeSetter.UI)
        clock.now = MONDAY.replace(hour=6, minute=59) + timedelta(days=1)
        await asyncio.sleep(0.2)
        seen.append(modes.state)
        clock.now = MONDAY.replace(hour=7) + timedelta(days=1)
        seen.append(await _until(modes, "home"))
        async with asyncio.timeout(5):
            while len(changes) < 3:
                await asyncio.sleep(0.02)

    # Then at 21:59 it was home (Monday 07:00 was the last change), turned night at 22:00
    # by the schedule, held `away` through the night, and turned home at 07:00
    assert [(s.mode, s.set_by) for s in seen] == [
        ("home", ModeSetter.SCHEDULE),
        ("night", ModeSetter.SCHEDULE),
        ("away", ModeSetter.UI),
        ("home", ModeSetter.SCHEDULE),
    ]
    assert seen[1].set_at == MONDAY.replace(hour=22)
    assert seen[3].set_at == MONDAY.replace(hour=7) + timedelta(days=1)
    assert [s.mode for s in changes] == ["night", "away", "home"]


async def test_a_schedule_change_that_fell_due_while_homesec_was_stopped_wins_at_start(
    state_config: StateStoreConfig,
) -> None:
    # Given HomeSec set to `away` by hand at noon, then stopped
    schedule = (ModeChange(at="22:00", mode="night"),)
    clock = Clock(MONDAY.replace(hour=12))
    async with _running(state_config, _config(*schedule), clock) as modes:
        await modes.set_mode("away", ModeSetter.API)

    # When it starts again at 23:00, after the 22:00 change, and once more at 23:30
    clock.now = MONDAY.replace(hour=23)
    async with _running(state_config, _config(*schedule), clock) as restarted:
        after_change = restarted.state
        await restarted.set_mode("home", ModeSetter.API)
    clock.now = MONDAY.replace(hour=23, minute=30)
    async with _running(state_config, _config(*schedule), clock) as again:
        after_hand = again.state

    # Then the schedule's night won over the older hand-set away, and a mode set by hand
    # after the change is kept
    assert (after_change.mode, after_change.set_by) == ("night", ModeSetter.SCHEDULE)
    assert (after_hand.mode, after_hand.set_by) == ("home", ModeSetter.API)


async def test_a_cameras_alert_switch_is_kept_across_modes_and_restarts(
    state_config: StateStoreConfig,
) -> None:
    # Given modes, and the backyard's alerts switched off over MQTT
    clock = Clock(MONDAY)
    async with _running(state_config, _config(), clock) as modes:
        await modes.set_alerts("backyard", False, ModeSetter.MQTT)

        # When the mode changes, and HomeSec restarts
        await modes.set_mode("away", ModeSetter.API)
    async with _running(state_config, _config(), clock) as restarted:
        state = restarted.state

    # Then the backyard's alerts are still off, the front door's on, in the new mode
    assert state.mode == "away"
    assert (state.alerts_on("backyard"), state.alerts_on("front_door")) == (False, True)


async def test_a_stored_mode_no_longer_configured_gives_way_to_the_first(
    state_config: StateStoreConfig,
) -> None:
    # Given HomeSec in `night` with the backyard switched off, then a config without `night`
    clock = Clock(MONDAY)
    async with _running(state_config, _config(), clock) as modes:
        await modes.set_mode("night", ModeSetter.API)
        await modes.set_alerts("backyard", False, ModeSetter.UI)
    fewer = ModesConfig(names=["home", "away"])

    # When it starts with that config
    async with _running(state_config, fewer, clock) as restarted:
        state = restarted.state

    # Then it is in the first mode of the new list, and the backyard is still off
    assert (state.mode, state.set_by) == ("home", ModeSetter.INITIAL)
    assert state.alerts_off == ["backyard"]


@pytest.mark.slow
async def test_a_mode_set_while_the_database_is_down_is_written_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, throwaway_postgres: ThrowawayPostgres
) -> None:
    # Given HomeSec running on a Postgres that then goes down
    monkeypatch.setenv(DSN_ENV, throwaway_postgres.dsn)
    state_config = state_store_config(tmp_path, write_timeout_s=1.0)
    clock = Clock(MONDAY)
    async with _running(state_config, _config(), clock) as modes:
        throwaway_postgres.stop()

        # When a person sets `away` during the outage, and the database comes back
        during = await modes.set_mode("away", ModeSetter.API)
        throwaway_postgres.start()
        await asyncio.sleep(1.0)  # a few of the controller's ticks

    # Then the mode was taken at once, and a restart finds it stored
    async with _running(state_config, _config(), clock) as restarted:
        assert isinstance(during, ModeState) and during.mode == "away"
        assert restarted.state.mode == "away"


async def test_a_change_for_some_days_only_is_skipped_on_the_others(
    state_config: StateStoreConfig,
) -> None:
    # Given night at 22:00 every day and home at 07:00 on Monday to Wednesday only
    schedule = (
        ModeChange(at="22:00", mode="night"),
        ModeChange(at="07:00", mode="home", days=[Weekday.MON, Weekday.TUE, Weekday.WED]),
    )

    # When HomeSec starts on Thursday at noon
    thursday_noon = MONDAY.replace(hour=12) + timedelta(days=3)
    async with _running(state_config, _config(*schedule), Clock(thursday_noon)) as modes:
        state = modes.state

    # Then it is still in Wednesday's 22:00 night
    assert (state.mode, state.set_by) == ("night", ModeSetter.SCHEDULE)
    assert state.set_at == MONDAY.replace(hour=22) + timedelta(days=2)


async def test_a_huge_unknown_mode_is_refused_with_a_short_reason(
    state_config: StateStoreConfig,
) -> None:
    # Given modes
    async with _running(state_config, _config(), Clock(MONDAY)) as modes:
        # When a megabyte of text is asked for as a mode (an MQTT payload, say)
        refused = await modes.set_mode("x" * 1_000_000, ModeSetter.MQTT)

    # Then it is refused with a reason short enough for a log line
    assert isinstance(refused, ModeRefused)
    assert len(refused.reason) < 200 and "home, away, night" in refused.reason


@asynccontextmanager
async def _writes_stuck(state_config: StateStoreConfig) -> AsyncIterator[None]:
    """Another session holds the write lock of the mode's table (a stuck database)."""
    dsn = os.environ.get(DSN_ENV)
    if dsn is None:
        holder = sqlite3.connect(state_config.sqlite_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    blocker = await asyncpg.connect(dsn)
    locked = blocker.transaction()
    await locked.start()
    await blocker.execute("LOCK TABLE settings IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        await locked.rollback()
        await blocker.close()


async def test_a_flood_of_changes_while_the_database_is_stuck_is_taken_at_once(
    state_config: StateStoreConfig,
) -> None:
    # Given modes whose every change is heard by a listener (as the MQTT notifier does),
    # and a database whose writes are stuck (each waits up to its 1 s write timeout)
    config = state_config.model_copy(update={"write_timeout_s": 1.0})
    heard: list[str] = []

    async def listener(state: ModeState) -> None:
        heard.append(state.mode)

    wanted = ["away", "night"] * 100
    async with _running(config, _config(), Clock(MONDAY)) as modes:
        modes.listen(listener)
        async with _writes_stuck(config):
            # When 200 mode commands come one after the other (MQTT's message loop takes
            # the next only once the last returned)
            started = time.monotonic()
            async with asyncio.timeout(10):
                for mode in wanted:
                    await modes.set_mode(mode, ModeSetter.MQTT)
            elapsed = time.monotonic() - started
        await asyncio.sleep(0.3)  # the database is back for a few ticks

    # ... and HomeSec restarts
    async with _running(config, _config(), Clock(MONDAY)) as restarted:
        stored = restarted.state

    # Then each was taken and heard at once (no command waits on the database), and the
    # last one is what the database keeps
    assert elapsed < 1.0
    assert heard == wanted
    assert stored.mode == "night"


@pytest.mark.slow
async def test_a_mode_set_while_the_database_answers_its_first_read_is_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_dsn: str
) -> None:
    # Given `night` stored, and HomeSec starting while another session holds the mode's
    # table locked: the read at start times out, and the next tick's read waits on the lock
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    config = state_store_config(tmp_path, write_timeout_s=2.0)
    async with _running(config, _config(), Clock(MONDAY)) as before:
        await before.set_mode("night", ModeSetter.API)
    repository = ClipRepository.from_config(config)
    await repository.start()
    blocker = await asyncpg.connect(postgres_dsn)
    locked = blocker.transaction()
    await locked.start()
    await blocker.execute("LOCK TABLE settings IN ACCESS EXCLUSIVE MODE")
    modes = Modes(_config(), CAMERAS, repository, clock=Clock(MONDAY), tick_s=0.05)
    try:
        await modes.start()
        await asyncio.sleep(0.3)

        # When a person sets `away` while that read waits, and the lock is then released
        await modes.set_mode("away", ModeSetter.API)
        await locked.rollback()
        await asyncio.sleep(0.5)
        after = modes.state
    finally:
        await blocker.close()
        await modes.aclose()
        await repository.aclose()
    async with _running(config, _config(), Clock(MONDAY)) as restarted:
        stored = restarted.state

    # Then the read's older `night` does not undo the person's `away`, here or stored
    assert (after.mode, after.set_by) == ("away", ModeSetter.API)
    assert stored.mode == "away"


async def test_of_two_changes_at_the_same_time_the_later_listed_wins(
    state_config: StateStoreConfig,
) -> None:
    # Given night at 22:00 every day, and away at 22:00 on Fridays, listed after it
    schedule = (
        ModeChange(at="22:00", mode="night"),
        ModeChange(at="22:00", mode="away", days=[Weekday.FRI]),
    )

    # When HomeSec runs on Thursday at 22:30, and on Friday at 22:30
    thursday = MONDAY.replace(hour=22, minute=30) + timedelta(days=3)
    async with _running(state_config, _config(*schedule), Clock(thursday)) as modes:
        on_thursday = modes.state
    friday = thursday + timedelta(days=1)
    async with _running(state_config, _config(*schedule), Clock(friday)) as modes:
        on_friday = modes.state

    # Then Friday's more specific change, listed later, wins on Fridays only
    assert (on_friday.mode, on_friday.set_by) == ("away", ModeSetter.SCHEDULE)
    assert (on_thursday.mode, on_thursday.set_by) == ("night", ModeSetter.SCHEDULE)


async def test_a_huge_unknown_camera_is_refused_with_a_short_reason(
    state_config: StateStoreConfig,
) -> None:
    # Given modes
    async with _running(state_config, _config(), Clock(MONDAY)) as modes:
        # When the alerts of a camera named by 60,000 characters are switched off (the
        # camera of an MQTT topic `{prefix}/{camera}/alerts/set` comes from the publisher)
        refused = await modes.set_alerts("x" * 60_000, False, ModeSetter.MQTT)

    # Then it is refused with a reason short enough for a log line
    assert isinstance(refused, ModeRefused)
    assert len(refused.reason) < 200
