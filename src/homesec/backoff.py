"""Exponential backoff, the one way HomeSec waits longer after each failure (tenacity's waits).

Every wait is `initial_s` doubling per failure, never more than `max_s`, with one of three
jitters: none (timers of one process), added (up to half of `initial_s` on top: tries of one
request), or drawn from the upper half of the wait (reconnections: clients behind one broker,
switch or NVR do not come back in lockstep, and the wait is never much shorter than meant).
Loops that are not tenacity's ask for the wait after their n-th failure (`wait_after`), or
keep a `Backoff` that counts failures for them.
"""

from __future__ import annotations

from enum import StrEnum

from tenacity import RetryCallState, Retrying
from tenacity.wait import (
    wait_base,
    wait_exponential,
    wait_exponential_jitter,
    wait_random_exponential,
)


class Jitter(StrEnum):
    NONE = "none"
    ADDED = "added"
    UPPER_HALF = "upper_half"


def exponential_wait(initial_s: float, max_s: float, jitter: Jitter = Jitter.NONE) -> wait_base:
    """The tenacity wait strategy: `initial_s` doubling, capped at `max_s`, with `jitter`."""
    match jitter:
        case Jitter.NONE:
            return wait_exponential(multiplier=initial_s, max=max_s)
        case Jitter.ADDED:
            return wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s / 2)
        case Jitter.UPPER_HALF:
            # Half the wait for sure, plus up to the other half at random.
            half = wait_exponential(multiplier=initial_s / 2, max=max_s / 2)
            return half + wait_random_exponential(multiplier=initial_s / 2, max=max_s / 2)


def wait_after(wait: wait_base, failures: int) -> float:
    """The wait after `failures` failures in a row (1: after the first), outside tenacity."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = failures
    return wait(state)


class Backoff:
    """A retry loop's waits: longer after each failure, back to the first after `reset()`."""

    def __init__(self, initial_s: float, max_s: float, jitter: Jitter = Jitter.NONE) -> None:
        self._wait = exponential_wait(initial_s, max_s, jitter)
        self._failures = 0

    def next_s(self) -> float:
        """Count a failure; the wait before trying again."""
        self._failures += 1
        return wait_after(self._wait, self._failures)

    def reset(self) -> None:
        """It worked: the next failure waits `initial_s` again."""
        self._failures = 0
