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
    VLM_OUTAGE = "vlm_outage"
    RTSP_VANISH = "rtsp_vanish"
    HOMESEC_SIGKILL = "homesec_sigkill"


Action = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    inject: Action
    heal: Action
    hold_s: float | None = None
    """How long it stays on, when not the schedule's common hold (a long outage)."""


@dataclass
class FaultLog:
    """When each fault was on (monotonic start, end)."""

    windows: list[tuple[FaultKind, float, float]] = field(default_factory=list)

    def kinds(self) -> set[FaultKind]:
        return {kind for kind, _, _ in self.windows}

    def of(self, kind: FaultKind) -> list[tuple[float, float]]:
        return [(start, end) for fault, start, end in self.windows if fault == kind]


def vlm_outage_seconds(duration_s: float) -> float:
    """The long VLM outage: several minutes in a long run, a share of a short one."""
    return min(max(duration_s * 0.17, 25.0), 300.0)


def slot_seconds(duration_s: float, warmup_s: float, faults: list[Fault]) -> tuple[float, float]:
    """(hold, gap): one pass of every fault fits the run, repeated when the run is long."""
    fixed = sum(fault.hold_s or 0.0 for fault in faults)  # long faults hold their own time
    slot = min(max((duration_s - warmup_s - fixed) / len(faults), 12.0), 120.0)
    hold = min(slot * 0.55, 45.0)
    return hold, slot - hold


async def run_schedule(
    faults: list[Fault], log: FaultLog, start_at: float, until: float, hold_s: float, gap_s: float
) -> None:
    """Cycle through `faults` from `start_at` until `until` (monotonic); heal each one."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    index = 0
    while True:
        fault = faults[index % len(faults)]
        hold = fault.hold_s or hold_s
        if time.monotonic() + hold >= until:
            return
        index += 1
        began = time.monotonic()
        logger.info("fault %s: on", fault.kind)
        await fault.inject()
        try:
            await asyncio.sleep(hold)
        finally:
            await fault.heal()
            logger.info("fault %s: healed", fault.kind)
            log.windows.append((fault.kind, began, time.monotonic()))
        await asyncio.sleep(gap_s)
