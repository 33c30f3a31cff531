"""One run at a time: later starts are dropped (SingleRun) or join the call on its way."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from homesec.single_flight import SingleFlight, SingleRun


async def test_a_start_while_a_run_goes_on_is_dropped_and_one_after_it_runs() -> None:
    # Given a run that goes on until released
    runs = SingleRun()
    release = asyncio.Event()
    started: list[str] = []

    async def run(label: str) -> None:
        started.append(label)
        await release.wait()

    # When it is started twice while it runs, and again once it ended
    first = runs.start(lambda: run("first"), name="test-run")
    second = runs.start(lambda: run("second"), name="test-run")
    await asyncio.sleep(0)
    release.set()
    await runs.wait()
    third = runs.start(lambda: run("third"), name="test-run")
    await runs.wait()

    # Then the start during the run was dropped without being called, the later one ran
    assert (first, second, third) == (True, False, True)
    assert started == ["first", "third"]
    assert not runs.running


async def test_a_waiter_given_up_does_not_cancel_the_run() -> None:
    # Given a run that goes on until released
    runs = SingleRun()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def run() -> None:
        await release.wait()
        finished.set()

    runs.start(run, name="test-run")

    # When a waiter gives up (times out) before the run ends
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(runs.wait(), 0.05)
    release.set()
    await runs.wait()

    # Then the run went on to its end
    assert finished.is_set()


async def test_cancel_stops_the_run_going_on() -> None:
    # Given a run that would never end
    runs = SingleRun()
    runs.start(lambda: asyncio.sleep(3600), name="test-run")
    await asyncio.sleep(0)

    # When it is cancelled
    await asyncio.wait_for(runs.cancel(), 5)

    # Then it is over
    assert not runs.running


async def test_callers_of_one_key_share_its_call_and_other_keys_get_their_own() -> None:
    # Given calls that count how often they are made
    flights: SingleFlight[str, str] = SingleFlight()
    made: list[str] = []

    async def fetch(key: str) -> str:
        made.append(key)
        number = len(made)
        await asyncio.sleep(0.05)
        return f"{key}-{number}"

    # When three callers ask for "a" and one for "b" at the same time, then one for "a" later
    together = await asyncio.gather(
        *(flights.call(key, partial(fetch, key), name=f"test:{key}") for key in "aaab")
    )
    later = await flights.call("a", lambda: fetch("a"), name="test:a")

    # Then the callers of "a" shared one call, "b" had its own, and the later caller a new one
    assert together == ["a-1", "a-1", "a-1", "b-2"]
    assert made == ["a", "b", "a"]
    assert later == "a-3"
    assert "a" not in flights


async def test_a_caller_given_up_does_not_cancel_the_call_the_others_wait_for() -> None:
    # Given a call of a key on its way, with two callers
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def fetch() -> str:
        await release.wait()
        return "done"

    quitter = asyncio.create_task(flights.call("k", fetch, name="test:k"))
    stayer = asyncio.create_task(flights.call("k", fetch, name="test:k"))
    await asyncio.sleep(0)

    # When the first caller is cancelled, then the call ends
    quitter.cancel()
    await asyncio.sleep(0)
    release.set()

    # Then the other caller still gets the call's outcome
    assert await stayer == "done"
    assert quitter.cancelled()


async def test_a_calls_error_reaches_every_caller() -> None:
    # Given a call that fails
    flights: SingleFlight[str, str] = SingleFlight()

    async def fail() -> str:
        await asyncio.sleep(0.01)
        raise ConnectionError("storage down")

    # When two callers share it
    outcomes = await asyncio.gather(
        flights.call("k", fail, name="test:k"),
        flights.call("k", fail, name="test:k"),
        return_exceptions=True,
    )

    # Then both get its error
    assert [str(outcome) for outcome in outcomes] == ["storage down", "storage down"]
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
