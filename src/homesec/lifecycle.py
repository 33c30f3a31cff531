"""Starting and closing long-lived parts (`interfaces.Lifecycle`) on an `AsyncExitStack`.

A part's `aclose()` goes on the stack before its `start()` runs, so a part whose start failed
half-way is closed too, and the parts close in the reverse of their start order. Closing never
raises: a part that fails to close is logged and the others close anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack

from homesec.interfaces import Lifecycle

logger = logging.getLogger(__name__)


async def enter(stack: AsyncExitStack, part: Lifecycle, name: str) -> None:
    """Start `part`, closed by `stack` (also when its start fails)."""
    stack.push_async_callback(close_logged, name, part.aclose)
    await part.start()


async def close_logged(name: str, close: Callable[[], Awaitable[None]]) -> None:
    """Run `close`; an error is logged with `name`, never raised."""
    try:
        await close()
    except Exception:
        logger.exception("%s did not close cleanly", name)


async def close_together(parts: Sequence[tuple[str, Lifecycle]]) -> None:
    # Each part bounds its own close.
    await asyncio.gather(*(close_logged(name, part.aclose) for name, part in parts))


async def close_in_order(parts: Sequence[tuple[str, Lifecycle]]) -> None:
    for name, part in parts:
        await close_logged(name, part.aclose)
