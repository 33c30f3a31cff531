"""One small Protocol per plugin kind: the only thing the core knows about a plugin.

Every plugin is a class registered with `homesec.plugins.registry.plugin`, built from its
own validated config model by `create(config)`. Every long-lived plugin (all kinds but the
alert policy) has one lifecycle, `Lifecycle`: `start()` when the app starts, `aclose()` when
it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from homesec.models.alert import Alert, AlertDecision, DetectionEvent, SystemAlert
from homesec.models.clip import Clip, LiveSegment
from homesec.models.config import VLMPreprocessConfig
from homesec.models.digest import Digest
from homesec.models.enums import ModeSetter
from homesec.models.health import HealthReport
from homesec.models.known import KnownEntity
from homesec.models.modes import ModeRefused, ModeState
from homesec.models.results import (
    AnalysisResult,
    AnalysisUnavailable,
    FilterOverrides,
    FilterResult,
    IngestRefusal,
    UploadOutcome,
)

ClipCallback = Callable[[Clip], None]
LiveSegmentCallback = Callable[[LiveSegment], None]


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class SourceConfig(PluginConfig):
    """Base of source configs; the loader fills `camera_name` from the camera entry."""

    camera_name: str = Field(description="Set by HomeSec from the camera's `name`")


class NotifierConfig(PluginConfig):
    """Base of notifier configs; the loader fills `camera_names` and `work_dir` in."""

    camera_names: list[str] = Field(
        default_factory=list, description="Set by HomeSec: the configured camera names"
    )
    work_dir: Path | None = Field(
        default=None,
        description="Set by HomeSec from `pipeline.work_dir`: where a notifier may keep state",
    )
    digest: bool = Field(
        default=False, description="Set by HomeSec: this sink receives the digest (`digest:`)"
    )


class AnalyzerConfig(PluginConfig):
    """Base of VLM analyzer configs; the loader fills `preprocessing` from `vlm.preprocessing`."""

    preprocessing: VLMPreprocessConfig = Field(
        default_factory=VLMPreprocessConfig,
        description="Set by HomeSec from `vlm.preprocessing`",
    )


@runtime_checkable
class Lifecycle(Protocol):
    """How every long-lived part of HomeSec starts and stops (plugins, repository, server).

    `start()` is called once before the part is used and may return before background work
    is up (a broker or a camera may be down); a part with nothing to start makes it a no-op.
    `aclose()` is called once at shutdown, also when `start()` failed or never ran: it stops
    background work and releases pools, sessions, connections and files, and it returns
    within a bounded time. An error it raises is logged; the other parts close anyway.
    """

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ClipNamer(Protocol):
    """Names new clips: each gets a clip_id no other clip has or had (SPEC section 3)."""

    async def claim(
        self,
        camera_name: str,
        unix_seconds: int,
        extension: str,
        folder: Path,
        *,
        wanted: str | None = None,
        in_place: bool = False,
    ) -> Path:
        """The path in `folder` for a new clip: `wanted` (a clip_id) when it is free, else
        the first free name of its second. `in_place`: the file is at `folder / wanted`."""


@runtime_checkable
class ClipSource(Lifecycle, Protocol):
    """Produces finalized clips on local disk and hands each one to the callback.

    Every new clip is named through the `ClipNamer` given to `use_namer` (before `start`).
    The callback is called on the event loop's thread. `start()` produces clips in the
    background; `aclose()` hands on a clip being finalized, then stops (sources close first).
    """

    @property
    def camera_name(self) -> str: ...

    def register_callback(self, callback: ClipCallback) -> None: ...

    def use_namer(self, namer: ClipNamer) -> None: ...

    def is_healthy(self) -> bool:
        """Able to receive clips right now (independent of motion or clip activity)."""

    def last_heartbeat(self) -> float:
        """Unix time of the last sign of life (frame read, folder scanned, connection check)."""

    def spooled_clips(self) -> list[Clip]:
        """The finished clips in this source's local spool (for recovery and retention)."""


@runtime_checkable
class LiveClipSource(Protocol):
    """Optional for sources: the pieces of a clip while it is still being recorded, so that
    the detector can look before the clip is finalized.

    Each finished piece of a clip being recorded is handed to the callback, on the event
    loop's thread; the clip handed on later carries the same clip_id.
    """

    def register_live_callback(self, callback: LiveSegmentCallback) -> None: ...


@runtime_checkable
class LiveView(Protocol):
    """Optional for sources: the camera's latest picture (JPEG), for the UI's camera page;
    None when there is none recent (the camera is down)."""

    async def live_picture(self) -> bytes | None: ...


@runtime_checkable
class UploadedClipSource(Protocol):
    """Optional for sources: takes clips sent to HomeSec's HTTP API
    (`POST /api/v1/ingest/{camera}`). The clip is on disk (synced) and handed on before
    `receive` returns it; a refused one leaves nothing behind."""

    async def receive(
        self, chunks: AsyncIterator[bytes], filename: str | None
    ) -> Clip | IngestRefusal: ...


@runtime_checkable
class AnalysisListener(Protocol):
    """Optional for sources: told of the analysis of each of its clips, to show it where the
    clip came from (an NVR's own UI). Best effort: an error is logged and the clip goes on."""

    async def analysis_ready(self, clip: Clip, analysis: AnalysisResult) -> None: ...


@runtime_checkable
class StorageBackend(Lifecycle, Protocol):
    """Where clips and their artifacts are kept for the user. Writes are idempotent."""

    async def put(self, local_path: Path, dest_key: str) -> UploadOutcome: ...

    async def get(self, storage_uri: str, local_path: Path) -> None: ...

    async def exists(self, dest_key: str) -> bool: ...

    async def put_json(self, obj: Mapping[str, JsonValue], dest_key: str) -> UploadOutcome: ...

    async def delete(self, dest_key: str) -> None:
        """Remove the object under the key; none there is no error. HomeSec deletes the
        probe `homesec doctor` writes, and a clip's objects when a person deletes the clip
        (never on its own)."""

    async def ping(self) -> bool: ...


@runtime_checkable
class ObjectFilter(Lifecycle, Protocol):
    """Decides what is in a clip. CPU-bound work runs off the event loop."""

    async def detect(
        self, video_path: Path, overrides: FilterOverrides | None = None
    ) -> FilterResult: ...


class AnalysisContext(BaseModel):
    """What a VLM analyzer may know about the clip besides its pixels."""

    clip_id: str
    camera_name: str
    start_ts: datetime
    camera_context: str | None = None
    """What the household says about the camera's view."""
    known: list[KnownEntity] = Field(default_factory=list)
    """Whom or what the VLM may recognise, from their reference pictures."""


@runtime_checkable
class VLMAnalyzer(Lifecycle, Protocol):
    """Turns a clip into a structured `AnalysisResult`."""

    async def analyze(
        self, video_path: Path, filter_result: FilterResult, context: AnalysisContext
    ) -> AnalysisResult: ...


@runtime_checkable
class TextWriter(Protocol):
    """Optional for analyzers: a text-only answer of the model (the digest). Raises on
    failure, like `analyze`."""

    async def write(self, instructions: str, material: str) -> str: ...


@runtime_checkable
class AlertPolicy(Protocol):
    """Decides whether a clip is worth telling the user about. Pure and fast.

    `analysis` is the VLM's result, `AnalysisUnavailable` when the VLM should have looked
    but failed, or None when it was skipped. `mode`: the mode HomeSec is in (`modes.names`),
    None without modes.
    """

    def decide(
        self,
        camera_name: str,
        filter_result: FilterResult | None,
        analysis: AnalysisResult | AnalysisUnavailable | None,
        mode: str | None = None,
    ) -> AlertDecision: ...


@runtime_checkable
class RelevanceFilter(Protocol):
    """Optional for alert policies: what counts for a camera in a mode before the VLM runs.

    Only the detections `relevant` keeps (those in its required zones, say) trigger the VLM,
    the detection event and an alert; the clip's stored result keeps every detection. A
    camera whose alerts are off (`alerts_on` false) gets no VLM, no detection event and no
    alert; it still records and uploads.
    """

    def relevant(
        self, camera_name: str, filter_result: FilterResult, mode: str | None = None
    ) -> FilterResult: ...

    def alerts_on(self, camera_name: str, mode: str | None = None) -> bool: ...

    def zones_needed(self, camera_name: str) -> list[str]:
        """The zone names the policy counts on for the camera in any mode (checked against
        the camera's zones when HomeSec starts: a typo would silently drop every detection)."""

    def modes_named(self) -> list[str]:
        """The modes the policy has settings for (checked against `modes.names` at start)."""

    def cameras_named(self) -> list[str]:
        """The cameras the policy has settings for, in any mode (checked against the
        configured cameras at start: a typo would leave that camera's settings unused)."""


@runtime_checkable
class DetectionSink(Protocol):
    """Optional for notifiers: the early detection event, before the VLM has spoken."""

    async def send_detection(self, event: DetectionEvent, snapshot: Path | None = None) -> None: ...


@runtime_checkable
class DigestSink(Protocol):
    """Optional for notifiers: the digest, for those configured with `digest: true`. Raises
    on failure; HomeSec tries again later (and never again once it went through)."""

    async def send_digest(self, digest: Digest) -> None: ...


@runtime_checkable
class HealthPublisher(Protocol):
    """Optional for notifiers: also publish the service's health (Home Assistant entity)."""

    async def publish_health(self, report: HealthReport) -> None: ...


ModeListener = Callable[[ModeState], Awaitable[None]]


@runtime_checkable
class ModeControl(Protocol):
    """HomeSec's mode and per-camera alert switches, as a plugin may show and set them."""

    @property
    def names(self) -> list[str]: ...

    @property
    def camera_names(self) -> list[str]: ...

    @property
    def state(self) -> ModeState: ...

    async def set_mode(self, mode: str, by: ModeSetter) -> ModeState | ModeRefused: ...

    async def set_alerts(
        self, camera_name: str, on: bool, by: ModeSetter
    ) -> ModeState | ModeRefused: ...

    def listen(self, listener: ModeListener) -> None:
        """`listener` is called with the new state after every change."""


@runtime_checkable
class ModeFollower(Protocol):
    """Optional for notifiers: show the mode and take changes (Home Assistant's select and
    switches). Called once, before `start()`, when HomeSec has modes."""

    def follow_modes(self, control: ModeControl) -> None: ...


@runtime_checkable
class ReviewPublisher(Protocol):
    """Optional for notifiers: per camera, how many clips wait for a person's review (every
    configured camera, 0 included), after each change and when HomeSec starts."""

    async def publish_reviews(self, waiting: Mapping[str, int]) -> None: ...


@runtime_checkable
class Notifier(Lifecycle, Protocol):
    """A sink for alerts. `send` raises on failure; the pipeline retries it."""

    @property
    def name(self) -> str: ...

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        """`snapshot`: a JPEG of the best detection, when there is one."""

    async def send_system(self, alert: SystemAlert) -> None: ...

    async def ping(self) -> bool: ...


@dataclass(frozen=True)
class SelfCheck:
    """One check that `homesec doctor` runs for real, named for its table (`broker login`).

    `run(timeout_s)` returns what it saw, or raises `CheckFailed` saying what is wrong and
    what to fix; it gives up within `timeout_s` (doctor cancels it soon after anyway).
    Neither may show a secret.
    """

    name: str
    run: Callable[[float], Awaitable[str]]


@runtime_checkable
class SelfChecking(Protocol):
    """Optional for every plugin: checks of what it depends on (a broker login, a camera
    stream, a free port), run in order by `homesec doctor` on the plugin as created, never
    started; the first that fails ends the plugin's checks."""

    def self_checks(self) -> list[SelfCheck]: ...
