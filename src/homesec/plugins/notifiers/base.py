"""What the notifiers that deliver while `send` awaits (apprise, email, webhook) share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Generic, Protocol, Self, TypeVar


class _NamedConfig(Protocol):
    @property
    def name(self) -> str: ...


ConfigT = TypeVar("ConfigT", bound=_NamedConfig)


class DirectNotifier(Generic[ConfigT]):
    """A notifier with no outbox: each message is delivered, or fails, before `send` returns.

    Nothing stays open between messages unless a subclass opens it (and closes it in
    `aclose`); `ping` says whether the last delivery went through.
    """

    def __init__(self, config: ConfigT) -> None:
        self._config = config
        self._last_delivery_ok = True

    @classmethod
    def create(cls, config: ConfigT) -> Self:
        return cls(config)

    @property
    def name(self) -> str:
        return self._config.name

    async def start(self) -> None:
        """Nothing to open: each message connects on its own."""

    async def ping(self) -> bool:
        """False after a failed delivery, until one succeeds."""
        return self._last_delivery_ok

    async def aclose(self) -> None:
        """Nothing stays open between messages."""

    @contextlib.contextmanager
    def _delivery(self) -> Iterator[None]:
        """Remembers, for `ping`, whether the delivery inside the block raised."""
        try:
            yield
        except Exception:
            self._last_delivery_ok = False
            raise
        self._last_delivery_ok = True
