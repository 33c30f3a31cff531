"""The end-of-run proof, from the outside: database rows, storage listing, MQTT alerts, /proc.

A produced clip is lost when it is missing from storage or stored more than once, has no
row, is not terminal (`done`, or `error` with a reason), or was decided to alert (its
`alert_decision.notify`), or had a person found in it (the VLM down or not), without any
alert reaching the broker.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from bench.soak.homesec_process import ResourceSample
from bench.soak.load import Ledger, ProducedClip
from homesec.models.enums import ClipStatus, StageName, StageStatus
from homesec.models.state import ClipStateData

# Resource growth between the first and last thirds of a process lifetime (after warm-up).
# RSS: the allocator, ONNX Runtime and connection pools move by tens of MB under a
# changing load; a per-clip leak (a decoded frame is ~6 MB at 1080p) grows far past this
# over the dozens of clips of a third.
RSS_TOLERANCE_KB = 64 * 1024
RSS_TOLERANCE_SHARE = 0.25
# Reconnecting pools (Postgres, MQTT, S3, FTP sessions) briefly hold a few sockets more.
FD_TOLERANCE = 12
# RTSP recorders and ffmpeg finishing jobs come and go: one or two more at a sample is normal.
CHILD_TOLERANCE = 2
_WARMUP_SHARE = 0.3
_MIN_SAMPLES = 30


@dataclass(frozen=True)
class ClipVerdict:
    clip: ProducedClip
    stored: int
    state: ClipStateData | None
    alerts: int
    problems: tuple[str, ...]

    @property
    def lost(self) -> bool:
        return bool(self.problems)


@dataclass
class Outcome:
    verdicts: list[ClipVerdict]
    unexpected_objects: list[str]
    states: dict[str, ClipStateData] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return sum(v.lost for v in self.verdicts) + len(self.unexpected_objects)

    def unfinished(self) -> list[ClipVerdict]:
        return [v for v in self.verdicts if v.lost]


async def read_states(dsn: str) -> dict[str, ClipStateData]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT clip_id, data FROM clip_states")
    finally:
        await connection.close()
    return {
        r["clip_id"]: ClipStateData.from_stored(r["clip_id"], json.loads(r["data"])) for r in rows
    }


def stored_clip_keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".mp4")]
    return keys


def judge(
    ledger: Ledger, states: dict[str, ClipStateData], keys: list[str], alerts: dict[str, int]
) -> Outcome:
    stored = Counter(key.rsplit("/", 1)[-1] for key in keys)
    verdicts = []
    for clip in ledger.clips.values():
        state = states.get(clip.clip_id)
        count = stored.get(clip.clip_id, 0)
        problems = _problems(state, count, alerts.get(clip.clip_id, 0))
        verdicts.append(ClipVerdict(clip, count, state, alerts.get(clip.clip_id, 0), problems))
    unexpected = sorted(name for name in stored if name not in ledger.clips)
    return Outcome(verdicts, unexpected, states)


def _problems(state: ClipStateData | None, stored: int, alerts: int) -> tuple[str, ...]:
    problems = []
    if stored == 0:
        problems.append("not in storage")
    elif stored > 1:
        problems.append(f"stored {stored} times")
    if state is None:
        return (*problems, "no database row")
    if not _terminal(state):
        problems.append(f"status {state.status}")
    decision = state.alert_decision
    found = state.filter_result.detected_classes if state.filter_result else []
    if alerts == 0 and decision is not None and decision.notify:
        problems.append("should alert, no MQTT alert")
    elif alerts == 0 and "person" in found:
        problems.append("a person was found, no MQTT alert")
    return tuple(problems)


def _terminal(state: ClipStateData) -> bool:
    if state.status == ClipStatus.DONE:
        return True
    failed = [log for log in state.stages.values() if log.status == StageStatus.ERROR]
    return state.status == ClipStatus.ERROR and all(log.last_error for log in failed)


def stage_latencies(states: list[ClipStateData]) -> dict[str, list[float]]:
    """Seconds each stage took (ok stages), and start-of-first to end-of-last per clip."""
    latencies: dict[str, list[float]] = {stage: [] for stage in StageName}
    latencies["clip"] = []
    for state in states:
        starts: list[datetime] = []
        ends: list[datetime] = []
        for stage, log in state.stages.items():
            if log.status == StageStatus.OK and log.started_at and log.finished_at:
                latencies[stage].append((log.finished_at - log.started_at).total_seconds())
                starts.append(log.started_at)
                ends.append(log.finished_at)
        if starts:
            latencies["clip"].append((max(ends) - min(starts)).total_seconds())
    return latencies


def resource_growth(samples: list[ResourceSample]) -> list[str]:
    """Growth found in the longest process lifetime (a SIGKILL starts a new one)."""
    lifetimes: dict[int, list[ResourceSample]] = {}
    for sample in samples:
        lifetimes.setdefault(sample.pid, []).append(sample)
    if not lifetimes:
        return ["no resource samples"]
    longest = max(lifetimes.values(), key=len)
    steady = longest[int(len(longest) * _WARMUP_SHARE) :]
    if len(steady) < _MIN_SAMPLES:
        return []
    third = len(steady) // 3
    first, last = steady[:third], steady[-third:]
    growth = []
    rss0, rss1 = _median(first, "rss_kb"), _median(last, "rss_kb")
    if rss1 - rss0 > max(RSS_TOLERANCE_KB, rss0 * RSS_TOLERANCE_SHARE):
        growth.append(f"RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} MB")
    fds0, fds1 = _median(first, "fds"), _median(last, "fds")
    if fds1 - fds0 > FD_TOLERANCE:
        growth.append(f"open files {fds0:.0f} -> {fds1:.0f}")
    kids0, kids1 = _median(first, "children"), _median(last, "children")
    if kids1 - kids0 > CHILD_TOLERANCE:
        growth.append(f"child processes {kids0:.0f} -> {kids1:.0f}")
    return growth


def resource_summary(samples: list[ResourceSample]) -> str:
    if not samples:
        return "no samples"
    rss = [s.rss_kb / 1024 for s in samples]
    return (
        f"RSS {min(rss):.0f}-{max(rss):.0f} MB, open files {min(s.fds for s in samples)}-"
        f"{max(s.fds for s in samples)}, children {min(s.children for s in samples)}-"
        f"{max(s.children for s in samples)}, {len({s.pid for s in samples})} process lifetimes"
    )


def _median(samples: list[ResourceSample], name: str) -> float:
    return statistics.median(float(getattr(sample, name)) for sample in samples)
