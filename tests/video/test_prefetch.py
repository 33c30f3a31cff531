"""prefetched: items produced ahead in a thread, stopped and closed when the consumer leaves."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from homesec.video.prefetch import prefetched


class Source:
    """A generator that records which threads ran it and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.produced: list[int] = []
        self.threads: set[str] = set()
        self.closed = False

    def items(self) -> Generator[int, None, None]:
        try:
            for value in range(self.count):
                self.threads.add(threading.current_thread().name)
                if value == self.fail_at:
                    raise ValueError(f"bad item {value}")
                self.produced.append(value)
                yield value
        finally:
            self.closed = True


def test_every_item_arrives_in_order() -> None:
    # Given a source of 50 items
    source = Source(50)

    # When they are consumed through the prefetcher
    with prefetched(source.items(), depth=2) as items:
        received = list(items)

    # Then all arrive in order, the later ones produced by the worker thread
    assert received == list(range(50))
    assert source.closed
    assert "frame-prefetch" in source.threads


def test_stopping_at_the_first_item_produces_nothing_more() -> None:
    # Given a source of 50 items
    source = Source(50)

    # When the consumer stops at the first item
    with prefetched(source.items()) as items:
        first = next(iter(items))

    # Then nothing else was produced, and the source was closed in the caller's thread
    assert first == 0
    assert source.produced == [0]
    assert source.closed
    assert source.threads == {threading.current_thread().name}


def test_leaving_early_stops_the_worker_and_closes_the_source() -> None:
    # Given a source of 1000 items
    source = Source(1000)

    # When the consumer leaves after 5 items
    with prefetched(source.items(), depth=2) as items:
        for value in items:
            if value == 4:
                break

    # Then the worker stopped a few items ahead and closed the source
    assert len(source.produced) <= 5 + 3
    assert source.closed
    assert not any(t.name == "frame-prefetch" for t in threading.enumerate())


def test_an_error_in_the_source_reaches_the_consumer_in_sequence() -> None:
    # Given a source that fails at its fourth item
    source = Source(10, fail_at=3)
    received: list[int] = []

    # When it is consumed
    with pytest.raises(ValueError, match="bad item 3"), prefetched(source.items()) as items:
        received.extend(items)

    # Then the items before the failure arrived first
    assert received == [0, 1, 2]


def test_an_empty_source_yields_nothing() -> None:
    # Given a source with no items
    source = Source(0)

    # When it is consumed
    with prefetched(source.items()) as items:
        received = list(items)

    # Then nothing arrives and the source is closed
    assert received == []
    assert source.closed
