"""The one exponential backoff: waits double from the first up to the cap, with the jitter asked."""

from __future__ import annotations

from homesec.backoff import Backoff, Jitter, exponential_wait, wait_after

_DRAWS = 200


def test_waits_double_from_the_first_up_to_the_cap_without_jitter() -> None:
    # Given waits of 5 s doubling up to 60 s
    waits = exponential_wait(5.0, 60.0)

    # When the waits after the first to the seventh failure, and the ten-thousandth, are asked
    seven = [wait_after(waits, failures) for failures in range(1, 8)]
    far = wait_after(waits, 10_000)

    # Then they double, then stay at the cap (even where 2**n would not fit a float)
    assert seven == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert far == 60.0


def test_added_jitter_is_up_to_half_the_first_wait_on_top_and_never_past_the_cap() -> None:
    # Given waits of 2 s doubling up to 10 s, with added jitter
    waits = exponential_wait(2.0, 10.0, Jitter.ADDED)

    # When each wait is drawn many times
    draws = {
        failures: [wait_after(waits, failures) for _ in range(_DRAWS)] for failures in (1, 3, 4)
    }

    # Then each is the doubled wait plus up to 1 s, and never more than the cap
    assert all(2.0 <= wait <= 3.0 for wait in draws[1])
    assert all(8.0 <= wait <= 9.0 for wait in draws[3])
    assert all(wait == 10.0 for wait in draws[4])
    assert len(set(draws[1])) > 1


def test_upper_half_jitter_draws_from_the_upper_half_of_the_capped_wait() -> None:
    # Given waits of 1 s doubling up to 30 s, drawn from their upper half
    waits = exponential_wait(1.0, 30.0, Jitter.UPPER_HALF)

    # When each wait is drawn many times
    draws = {
        failures: [wait_after(waits, failures) for _ in range(_DRAWS)] for failures in (1, 4, 9)
    }

    # Then each lies between half the (capped) doubled wait and the whole of it
    assert all(0.5 <= wait <= 1.0 for wait in draws[1])
    assert all(4.0 <= wait <= 8.0 for wait in draws[4])
    assert all(15.0 <= wait <= 30.0 for wait in draws[9])
    assert len(set(draws[4])) > 1


def test_a_backoff_counts_failures_until_reset() -> None:
    # Given a loop's backoff of 1 s doubling up to 4 s
    backoff = Backoff(1.0, 4.0)

    # When it fails four times, then works, then fails again
    before = [backoff.next_s() for _ in range(4)]
    backoff.reset()
    after = backoff.next_s()

    # Then the waits grow to the cap, and start over from the first after the reset
    assert before == [1.0, 2.0, 4.0, 4.0]
    assert after == 1.0
