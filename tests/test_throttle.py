"""The wrong-credential throttle shared by the API and the FTP server, on a clock we control."""

from __future__ import annotations

import pytest

from homesec.throttle import WRONG_GUESS_LIMIT, WRONG_GUESS_WINDOW_S, GuessThrottle


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_from_the_limit_until_its_oldest_guess_leaves_the_window() -> None:
    # Given a throttle
    clock = FrozenClock(100.0)
    throttle = GuessThrottle("API key", clock=clock)

    # When one address guesses wrong up to the limit, a second apart
    waits = []
    for _ in range(WRONG_GUESS_LIMIT):
        waits.append(throttle.retry_after_s("10.0.0.1"))
        throttle.failed("10.0.0.1")
        clock.now += 1
    locked = throttle.retry_after_s("10.0.0.1")
    clock.now = 100.0 + WRONG_GUESS_WINDOW_S
    freed = throttle.retry_after_s("10.0.0.1")

    # Then it may try until the limit, then waits out the window of its first guess; another
    # address is never affected
    assert waits == [None] * WRONG_GUESS_LIMIT
    assert locked == pytest.approx(WRONG_GUESS_WINDOW_S - WRONG_GUESS_LIMIT)
    assert freed is None
    assert throttle.retry_after_s("10.0.0.2") is None


def test_a_lockout_is_logged_once_per_window_however_long_the_guessing_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a throttle
    clock = FrozenClock(0.0)
    throttle = GuessThrottle("FTP password", clock=clock)

    # When an address guesses wrong whenever it may, once a second for three windows
    while clock.now < 3 * WRONG_GUESS_WINDOW_S:
        if throttle.retry_after_s("10.0.0.1") is None:
            throttle.failed("10.0.0.1")
        clock.now += 1

    # Then its lockout is logged once per window, naming what was guessed and the address
    lockouts = [r.getMessage() for r in caplog.records if "Too many wrong" in r.getMessage()]
    assert len(lockouts) == 3
    assert all("FTP passwords from 10.0.0.1" in message for message in lockouts)
