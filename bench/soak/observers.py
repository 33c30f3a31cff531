"""What the campaign watches from the outside while it runs: MQTT alerts and the spools."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

logger = logging.getLogger(__name__)

_RECONNECT_S = 0.5


@dataclass
class AlertCollector:
    """A persistent-session MQTT subscriber that reconnects through broker outages."""

    host: str
    port: int
    topic_prefix: str
    session: str
    alerts: dict[str, int] = field(default_factory=dict)
    """Alerts received per clip_id."""
    detections: dict[str, int] = field(default_factory=dict)
    system_alerts: dict[str, int] = field(default_factory=dict)
    """System alerts received per kind (`spool_over_limit`...)."""
    payloads: list[bytes] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, identifier=self.session, clean_session=False
                ) as client:
                    await client.subscribe(f"{self.topic_prefix}/#", qos=1)
                    async for message in client.messages:
                        self._record(str(message.topic), message.payload)
            except aiomqtt.MqttError:
                await asyncio.sleep(_RECONNECT_S)

    def _record(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        self.payloads.append(raw)
        kind = topic.removeprefix(self.topic_prefix + "/").split("/")[0]
        try:
            message = json.loads(raw)
            clip_id = message.get("clip_id")
        except (ValueError, AttributeError):
            return
        if kind == "system":
            system_kind = str(message.get("kind"))
            self.system_alerts[system_kind] = self.system_alerts.get(system_kind, 0) + 1
            return
        if not isinstance(clip_id, str):
            return
        tally = self.alerts if kind == "alerts" else self.detections
        tally[clip_id] = tally.get(clip_id, 0) + 1


@dataclass(frozen=True)
class SpoolFolder:
    camera: str
    path: Path


@dataclass
class SpoolWatcher:
    """Polls the spool folders: which clips appeared, and whether any vanished before upload.

    `in_storage(camera, clip_id)` asks the storage server directly (not through the faulty
    proxy) whether the clip is there; a local copy gone while it is not is a violation.
    """

    folders: list[SpoolFolder]
    in_storage: Any
    seen: dict[str, tuple[str, float]] = field(default_factory=dict)
    """clip_id -> (camera, first seen, monotonic)."""
    deleted_early: list[str] = field(default_factory=list)
    pruned: int = 0
    sizes: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic, bytes of spooled clips) at every look."""

    async def run(self, every_s: float = 0.25) -> None:
        present: dict[str, str] = {}
        while True:
            now = await asyncio.to_thread(self._scan)
            for clip_id, camera in now.items():
                self.seen.setdefault(clip_id, (camera, time.monotonic()))
            for clip_id in present.keys() - now.keys():
                camera = present[clip_id]
                if await asyncio.to_thread(self.in_storage, camera, clip_id):
                    self.pruned += 1
                else:
                    self.deleted_early.append(clip_id)
                    logger.error("%s left its spool before it was in storage", clip_id)
            present = now
            self.sizes.append((time.monotonic(), await asyncio.to_thread(self.bytes_on_disk)))
            await asyncio.sleep(every_s)

    def peak_between(self, start: float, end: float) -> int:
        """The most the spool held between two monotonic times."""
        return max((size for at, size in self.sizes if start <= at <= end), default=0)

    def bytes_on_disk(self) -> int:
        """What the spooled clips weigh now (retention keeps this near its cap)."""
        total = 0
        for folder in self.folders:
            if folder.path.is_dir():
                for path in folder.path.glob(f"{folder.camera}_*.mp4"):
                    with contextlib.suppress(FileNotFoundError):  # pruned meanwhile
                        total += path.stat().st_size
        return total

    def _scan(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for folder in self.folders:
            if not folder.path.is_dir():
                continue
            for path in folder.path.glob(f"{folder.camera}_*.mp4"):
                found[path.name] = folder.camera
        return found
