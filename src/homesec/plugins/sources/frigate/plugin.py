"""`frigate` source: HomeSec as the AI layer on top of a Frigate NVR.

It follows Frigate's review items on MQTT (`{topic_prefix}/reviews`). When an item of the
mapped Frigate camera ends and passes the filters (severity, labels, zones), its clip is
fetched from Frigate's HTTP API (cut from its recordings), asked again with a growing
wait while Frigate has not written it yet (up to `clip_ready_timeout_s`, and for as long as
Frigate is unreachable), spooled to disk, named by the service's `ClipNamer` after the item's
start, and handed on (with Frigate's own detections, `use_frigate_detections`, so HomeSec's
detector need not run). With `write_back`, the VLM's summary goes back to Frigate as the
description of the item's events. Items that ended while HomeSec or the broker was away are
found through `/api/review` on every (re)connect, from the newest item taken (at most
`catch_up_s` back); the ledger (`ledger.py`) keeps every item taken once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import aiomqtt
from pydantic import Field, HttpUrl, ValidationError

from homesec.backoff import Backoff, Jitter
from homesec.errors import CheckFailed
from homesec.interfaces import SelfCheck, SourceConfig
from homesec.models.clip import Clip
from homesec.models.config import FolderPath
from homesec.models.enums import PluginType
from homesec.models.results import AnalysisResult, FilterResult
from homesec.plugins.mqtt_broker import Broker, BrokerSettings
from homesec.plugins.registry import plugin
from homesec.plugins.sources.base import SourceBase, clip_record
from homesec.plugins.sources.frigate.api import (
    FRIGATE_NAME,
    ClipNotReady,
    ClipTooLarge,
    FrigateApi,
    FrigateUnreachable,
    MessageType,
    ReviewItem,
    ReviewMessage,
    Severity,
)
from homesec.plugins.sources.frigate.detections import frigate_detections
from homesec.plugins.sources.frigate.ledger import ItemState, Ledger, LedgerEntry
from homesec.single_flight import SingleRun
from homesec.video.clip import VideoReadError, probe_clip

logger = logging.getLogger(__name__)

BACKEND = "frigate"
LEDGER_NAME = ".frigate_items.json"
# Catch-up looks a little before where the ledger says: items end out of order.
_CATCH_UP_OVERLAP = timedelta(minutes=5)
# Clips fetched at once (a catch-up may find hundreds): Frigate cuts each from its recordings.
_PARALLEL_FETCHES = 2


class FrigateSourceConfig(SourceConfig):
    """Frigate's address and broker, which of its review items to take, and where to spool."""

    api_url: HttpUrl = Field(
        description="Frigate's HTTP address, e.g. http://frigate:5000 (the port without login)"
    )
    mqtt: BrokerSettings = Field(
        default_factory=BrokerSettings, description="The MQTT broker Frigate publishes to"
    )
    topic_prefix: str = Field(
        default="frigate", min_length=1, description="Frigate's MQTT topic_prefix"
    )
    frigate_camera: str | None = Field(
        default=None,
        pattern=FRIGATE_NAME,
        description="The camera's name in Frigate (default: the camera's name)",
    )
    severities: list[Severity] = Field(
        default_factory=lambda: [Severity.ALERT, Severity.DETECTION],
        min_length=1,
        description="Review severities taken",
    )
    labels: list[str] = Field(
        default_factory=list,
        description="Take only items with one of these objects (Frigate labels); empty: any",
    )
    zones: list[str] = Field(
        default_factory=list,
        description="Take only items in one of these Frigate zones; empty: anywhere",
    )
    spool_dir: FolderPath = Field(
        default=Path("var/frigate"),
        description="Where fetched clips are kept, in a folder per camera",
    )
    clip_ready_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="How long Frigate may take to have an ended item's clip ready",
    )
    retry_min_s: float = Field(
        default=1.0, gt=0, description="First wait before asking Frigate for a clip again"
    )
    retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between requests for a clip"
    )
    catch_up_s: float = Field(
        default=86_400.0,
        ge=0,
        description="How far back items missed while away are fetched (on the first start: "
        "from now)",
    )
    max_file_size_bytes: int = Field(
        default=1_073_741_824, gt=0, description="Larger clips are not taken (logged)"
    )
    download_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest time one clip's download may take (then it is asked for again)",
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for an answer of Frigate's API"
    )
    health_check_interval_s: float = Field(
        default=10.0, gt=0, description="Seconds between checks that Frigate's API answers"
    )
    use_frigate_detections: bool = Field(
        default=False,
        description="Take Frigate's labels, scores and boxes as the clip's detections instead "
        "of running HomeSec's detector (which still runs when Frigate's cannot be read)",
    )
    write_back: bool = Field(
        default=False,
        description="Write the VLM's summary into Frigate as the description of the item's "
        "events, shown in Frigate's UI (needs Frigate's API without login)",
    )


@plugin(PluginType.SOURCE, BACKEND, config=FrigateSourceConfig)
class FrigateSource(SourceBase[FrigateSourceConfig]):
    backend = BACKEND

    def __init__(self, config: FrigateSourceConfig) -> None:
        super().__init__(config)
        self._frigate_camera = config.frigate_camera or config.camera_name
        self._spool = config.spool_dir.expanduser().resolve() / config.camera_name
        self._parts = self._spool / ".parts"
        keep = timedelta(seconds=config.catch_up_s) + timedelta(days=1)
        self._ledger = Ledger(self._spool / LEDGER_NAME, keep)
        self._broker = Broker(config.mqtt)
        self._api: FrigateApi | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._catching_up = SingleRun()
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._fetch_slots = asyncio.Semaphore(_PARALLEL_FETCHES)
        self._subscribed = False
        self._api_ok = False

    async def _open(self) -> None:
        await asyncio.to_thread(self._prepare)
        config = self._config
        self._api = FrigateApi(
            str(config.api_url), config.request_timeout_s, config.download_timeout_s
        )
        self._tasks = [
            asyncio.create_task(self._follow(), name=f"frigate-mqtt:{self.camera_name}"),
            asyncio.create_task(self._watch_api(), name=f"frigate-api:{self.camera_name}"),
        ]

    async def aclose(self) -> None:
        await self._catching_up.cancel()
        tasks = [*self._tasks, *self._fetching.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._fetching.clear()
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        self._subscribed = False

    def is_healthy(self) -> bool:
        return self._subscribed and self._api_ok

    def self_checks(self) -> list[SelfCheck]:
        return [
            SelfCheck("broker login", self._broker.check_login),
            SelfCheck("Frigate API", self._check_api),
        ]

    def spooled_clips(self) -> list[Clip]:
        self._ledger.ensure_loaded()
        return [
            self._clip(self._spool / entry.clip_id, entry)
            for entry in self._ledger.taken()
            if entry.clip_id is not None and (self._spool / entry.clip_id).is_file()
        ]

    async def _check_api(self, timeout_s: float) -> str:
        api = FrigateApi(str(self._config.api_url), timeout_s)
        try:
            version = await api.version()
        except FrigateUnreachable as exc:
            raise CheckFailed(
                f"Frigate does not answer at {self._config.api_url} ({exc.cause or exc}): check "
                "api_url (Frigate's port 5000 inside its network)",
                exc,
            ) from exc
        finally:
            await api.aclose()
        return f"Frigate {version} at {self._config.api_url}"

    def _prepare(self) -> None:
        self._parts.mkdir(parents=True, exist_ok=True)
        self._ledger.load()
        for part in self._parts.iterdir():  # fetches cut short by the last stop
            part.unlink(missing_ok=True)

    async def _follow(self) -> None:
        """Follow `{prefix}/reviews`; after every (re)connect, catch up through the API."""
        config = self._config
        broker = config.mqtt
        backoff = Backoff(broker.reconnect_min_s, broker.reconnect_max_s, Jitter.UPPER_HALF)
        topic = f"{config.topic_prefix}/reviews"
        while True:
            try:
                async with self._broker.client() as client:
                    await client.subscribe(topic, qos=1)
                    self._subscribed = True
                    backoff.reset()
                    logger.info("Following %s on %s", topic, broker.where, extra=self._log_extra)
                    self._catching_up.start(self._catch_up, f"frigate-catch-up:{self.camera_name}")
                    async for message in client.messages:
                        self._heartbeat = time.time()
                        self._on_message(message.payload)
            except aiomqtt.MqttError as exc:
                if self._subscribed:
                    logger.warning(
                        "Lost the broker at %s (%s); reconnecting",
                        broker.where,
                        exc,
                        extra=self._log_extra,
                    )
                self._subscribed = False
            await asyncio.sleep(backoff.next_s())

    def _on_message(self, payload: object) -> None:
        if not isinstance(payload, bytes | bytearray):
            return
        try:
            message = ReviewMessage.model_validate_json(payload)
        except ValidationError as exc:
            logger.warning(
                "Ignoring a review message that is not Frigate's format: %s",
                exc.errors(include_url=False, include_input=False)[:1],
                extra=self._log_extra,
            )
            return
        if message.type == MessageType.END:
            self._take(message.after)

    async def _catch_up(self) -> None:
        """Fetch the items that ended while HomeSec or the broker was away."""
        now = datetime.now(UTC)
        oldest = now - timedelta(seconds=self._config.catch_up_s)
        start = self._ledger.catch_up_from()
        after = max(oldest, start - _CATCH_UP_OVERLAP) if start is not None else oldest
        backoff = Backoff(self._config.retry_min_s, self._config.retry_max_s, Jitter.UPPER_HALF)
        while True:
            assert self._api is not None
            try:
                items = await self._api.reviews(self._frigate_camera, after)
                break
            except FrigateUnreachable as exc:
                self._api_ok = False
                logger.warning("Cannot catch up yet: %s", exc, extra=self._log_extra)
                await asyncio.sleep(backoff.next_s())
        taken = [item for item in items if item.end_time is not None and self._take(item)]
        if taken:
            logger.info("Catching up on %d Frigate item(s)", len(taken), extra=self._log_extra)

    def _take(self, item: ReviewItem) -> bool:
        """Start fetching the item's clip, unless it is not ours, filtered out, or known."""
        if item.camera != self._frigate_camera or not self._wanted(item):
            return False
        if item.id in self._fetching or self._ledger.known(item.id):
            return False
        task = asyncio.create_task(self._fetch(item), name=f"frigate-fetch:{item.id}")
        self._fetching[item.id] = task
        task.add_done_callback(partial(self._fetched, item.id))
        return True

    def _fetched(self, item_id: str, task: asyncio.Task[None]) -> None:
        self._fetching.pop(item_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The item stays pending in the ledger: the next catch-up fetches it again.
            logger.error(
                "Fetching Frigate item %s failed: %r",
                item_id,
                exc,
                exc_info=exc,
                extra=self._log_extra,
            )

    def _wanted(self, item: ReviewItem) -> bool:
        config = self._config
        if item.severity not in config.severities:
            return False
        if config.labels and not set(config.labels) & set(item.data.objects):
            return False
        return not config.zones or bool(set(config.zones) & set(item.data.zones))

    async def _fetch(self, item: ReviewItem) -> None:
        """Download the item's clip, asking again while Frigate has not written it yet."""
        assert self._api is not None
        part = self._parts / f"{item.id}.mp4.part"
        backoff = Backoff(self._config.retry_min_s, self._config.retry_max_s, Jitter.UPPER_HALF)
        deadline = time.monotonic() + self._config.clip_ready_timeout_s
        end = item.end_time or item.start_time
        pending = LedgerEntry(state=ItemState.PENDING, start=item.start_time, end=end)
        try:
            await asyncio.to_thread(self._ledger.record, item.id, pending)
        except OSError as exc:  # kept in memory; the file has it with the next record
            logger.error("Cannot record Frigate item %s: %s", item.id, exc, extra=self._log_extra)
        while True:
            try:
                queued = time.monotonic()
                async with self._fetch_slots:
                    # Waiting behind other items' clips is not Frigate being late with this one.
                    deadline += time.monotonic() - queued
                    await self._api.download_clip(item, part, self._config.max_file_size_bytes)
                self._api_ok = True
                await self._spool_clip(item, part)
                return
            except FrigateUnreachable as exc:
                self._api_ok = False  # no deadline: Frigate has the clip once it is back
                logger.warning(
                    "Frigate unreachable for %s: %s", item.id, exc, extra=self._log_extra
                )
            except ClipNotReady as exc:
                if time.monotonic() > deadline:
                    await self._give_up(
                        item, part, f"{exc} after {self._config.clip_ready_timeout_s:.0f} s"
                    )
                    return
            except ClipTooLarge as exc:
                await self._give_up(item, part, str(exc))
                return
            except OSError as exc:  # a full disk may be freed by retention: try again later
                logger.error(
                    "Cannot spool Frigate item %s: %s", item.id, exc, extra=self._log_extra
                )
                await asyncio.to_thread(part.unlink, missing_ok=True)
            await asyncio.sleep(backoff.next_s())

    async def _spool_clip(self, item: ReviewItem, part: Path) -> None:
        """Name the fetched clip, record it, and hand it on."""
        start = item.start_time
        end = item.end_time or start
        detections = await self._detections(item, part)
        target = await self._names.claim(
            self.camera_name, int(start.timestamp()), ".mp4", self._spool
        )
        entry = LedgerEntry(
            state=ItemState.CLAIMED,
            clip_id=target.name,
            start=start,
            end=end,
            events=item.data.detections,
            detections=detections,
        )
        await asyncio.to_thread(self._ledger.record, item.id, entry)
        await asyncio.to_thread(part.rename, target)
        taken = entry.model_copy(update={"state": ItemState.TAKEN})
        await asyncio.to_thread(self._ledger.record, item.id, taken)
        objects = ", ".join(item.data.objects) or item.severity
        self._hand_on(self._clip(target, taken), f", Frigate item {item.id} ({objects})")

    async def _detections(self, item: ReviewItem, clip: Path) -> FilterResult | None:
        """Frigate's detections of the item, when configured and readable."""
        if not self._config.use_frigate_detections:
            return None
        assert self._api is not None
        try:
            info = await asyncio.to_thread(probe_clip, clip)
            return await frigate_detections(self._api, item, info)
        except (FrigateUnreachable, VideoReadError) as exc:
            logger.warning(
                "Frigate's detections of %s cannot be read (%s); HomeSec's detector runs",
                item.id,
                exc,
                extra=self._log_extra,
            )
            return None

    async def analysis_ready(self, clip: Clip, analysis: AnalysisResult) -> None:
        """With `write_back`, the summary becomes the description of the item's events, and
        a known entity the VLM recognised their sub-label."""
        if not self._config.write_back or self._api is None:
            return
        entry = await asyncio.to_thread(self._ledger.by_clip, clip.clip_id)
        events = entry.events if entry is not None else []
        # Each event on its own: one Frigate refuses (deleted since) leaves the others written.
        outcomes = await asyncio.gather(
            *(self._write_back(event_id, analysis) for event_id in events),
            return_exceptions=True,
        )
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failed:
            raise failed[0]

    async def _write_back(self, event_id: str, analysis: AnalysisResult) -> None:
        assert self._api is not None
        await self._api.set_description(event_id, analysis.summary)
        if not analysis.known_entities:
            return
        label = (await self._api.event(event_id)).label
        # Only an unambiguous name: two known people in one clip name no person event.
        names = [entity.name for entity in analysis.known_entities if entity.label == label]
        if len(names) == 1:
            await self._api.set_sub_label(event_id, names[0])

    async def _give_up(self, item: ReviewItem, part: Path, why: str) -> None:
        logger.error("No clip for Frigate item %s: %s", item.id, why, extra=self._log_extra)
        await asyncio.to_thread(part.unlink, missing_ok=True)
        end = item.end_time or item.start_time
        entry = LedgerEntry(state=ItemState.UNAVAILABLE, start=item.start_time, end=end)
        await asyncio.to_thread(self._ledger.record, item.id, entry)

    async def _watch_api(self) -> None:
        """Heartbeat: Frigate's API answers (a clip could be fetched now)."""
        while True:
            assert self._api is not None
            try:
                await self._api.version()
                self._api_ok = True
                self._heartbeat = time.time()
            except FrigateUnreachable:
                self._api_ok = False
            await asyncio.sleep(self._config.health_check_interval_s)

    def _clip(self, path: Path, entry: LedgerEntry) -> Clip:
        duration = (entry.end - entry.start).total_seconds()
        clip = clip_record(path, self.camera_name, BACKEND, entry.start.timestamp(), duration)
        return clip.model_copy(update={"source_detections": entry.detections})
