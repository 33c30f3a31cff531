"""The fault schedule: each fault is injected for a while, healed, then the next one comes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

logger = logging.getLogger(__name__)


class FaultKind(StrEnum):
    """Every fault the campaign injects (the disk cap is configured, always on)."""

    POSTGRES_DOWN = "postgres_down"
    BROKER_DOWN = "broker_down"
    STORAGE_FAILING = "storage_failing"
    STORAGE_SLOW = "storage_slow"
    VLM_TIMEOUT = "vlm_timeout"
    VLM_GARBAGE = "vlm_garbage"
    RTSP_VANISH = "rtsp_vanish"
    HOMESEC_SIGKILL = "homesec_sigkill"


Action = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    inject: Action
    heal: Action


@dataclass
class FaultLog:
    """When each fault was on (monotonic start, end)."""

    windows: list[tuple[FaultKind, float, float]] = field(default_factory=list)

    def kinds(self) -> set[FaultKind]:
        return {kind for kind, _, _ in self.windows}


def slot_seconds(duration_s: float, warmup_s: float, faults: int) -> tuple[float, float]:
    """(hold, gap): one pass of every fault fits the run, repeated when the run is long."""
    slot = min(max((duration_s - warmup_s) / faults, 12.0), 120.0)
    hold = min(slot * 0.55, 45.0)
    return hold, slot - hold


async def run_schedule(
    faults: list[Fault], log: FaultLog, start_at: float, until: float, hold_s: float, gap_s: float
) -> None:
    """Cycle through `faults` from `start_at` until `until` (monotonic); heal each one."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    index = 0
    while time.monotonic() + hold_s < until:
        fault = faults[index % len(faults)]
        index += 1
        began = time.monotonic()
        logger.info("fault %s: on", fault.kind)
        await fault.inject()
        try:
            await asyncio.sleep(hold_s)
        finally:
            await fault.heal()
            logger.info("fault %s: healed", fault.kind)
            log.windows.append((fault.kind, began, time.monotonic()))
        await asyncio.sleep(gap_s)
