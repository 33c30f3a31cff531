"""Wrong-credential throttling per client address: the API's keys and the FTP server's passwords.

An address that presented `WRONG_GUESS_LIMIT` wrong credentials within `WRONG_GUESS_WINDOW_S`
is refused, even with the right ones, until the oldest of those has left the window: a short
secret cannot be guessed at network speed. Behind a proxy or NAT every client shares one
address, so a guesser locks everyone out for a minute, never in. A lockout is logged once per
window however long the guessing goes on, so a guesser cannot flood the log either.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import LRUCache

logger = logging.getLogger(__name__)

WRONG_GUESS_LIMIT = 10
WRONG_GUESS_WINDOW_S = 60.0
_CLIENTS_TRACKED = 10_000


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    reported_at: float | None = None


class GuessThrottle:
    """Counts wrong `guessed` credentials (e.g. "API key") per client address, sliding window.

    Not thread-safe: each user keeps it on one thread (the event loop, the FTP server's).
    """

    def __init__(
        self,
        guessed: str,
        limit: int = WRONG_GUESS_LIMIT,
        window_s: float = WRONG_GUESS_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guessed = guessed
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        # Bounded: a flood of addresses cannot grow it; the least recently seen go first.
        self._clients: LRUCache[str, _Client] = LRUCache(_CLIENTS_TRACKED)

    def retry_after_s(self, client: str) -> float | None:
        """Seconds until `client` may try again; None when it may now."""
        record = self._clients.get(client)
        if record is None or len(self._recent(record)) < self._limit:
            return None
        return max(0.0, record.failures[0] + self._window_s - self._clock())

    def failed(self, client: str) -> None:
        """Count a wrong credential from `client`; the one that locks it out is logged."""
        record = self._clients.setdefault(client, _Client())
        failures = self._recent(record)
        now = self._clock()
        failures.append(now)
        if len(failures) < self._limit:
            return
        if record.reported_at is not None and now - record.reported_at < self._window_s:
            return
        record.reported_at = now
        logger.warning(
            "Too many wrong %ss from %s (%d within %.0f s): refused for up to %.0f s",
            self._guessed,
            client,
            len(failures),
            self._window_s,
            self._window_s,
        )

    def _recent(self, record: _Client) -> deque[float]:
        failures = record.failures
        while failures and failures[0] <= self._clock() - self._window_s:
            failures.popleft()
        return failures
