"""Fake plugins registered under `fake_*` names, so configs and subprocesses can use them.

They stand in for the outer boundary only (the detector, the VLM, a storage service); the
pipeline, repository, notifiers and sources under test are the real ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, JsonValue

from homesec.interfaces import AnalysisContext, AnalyzerConfig, NotifierConfig, PluginConfig
from homesec.models.alert import Alert, SystemAlert
from homesec.models.enums import PluginType, RiskLevel
from homesec.models.health import HealthReport
from homesec.models.known import RecognisedEntity
from homesec.models.results import (
    AnalysisResult,
    Detection,
    FilterOverrides,
    FilterResult,
    Place,
    UploadOutcome,
)
from homesec.plugins.registry import load_storage, plugin


class FakeFilterConfig(PluginConfig):
    classes: list[str] = Field(default_factory=lambda: ["person"])
    delay_s: float = 0.0
    fail_first: int = Field(default=0, description="Calls that fail before one succeeds")
    reject_non_video: bool = Field(
        default=True, description="Fail like a real decoder on files without a video header"
    )
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="Report a detection of the first class with this box at 1 s"
    )
    also_at: tuple[float, float, float, float] | None = Field(
        default=None, description="The class was also seen here, in one sampled frame"
    )


@plugin(PluginType.FILTER, "fake_filter", config=FakeFilterConfig)
class FakeFilter:
    """Instant detector: reports the configured classes for any real video file."""

    def __init__(self, config: FakeFilterConfig) -> None:
        self.config = config
        self.calls: list[Path] = []

    @classmethod
    def create(cls, config: FakeFilterConfig) -> FakeFilter:
        return cls(config)

    async def detect(
        self, video_path: Path, overrides: FilterOverrides | None = None
    ) -> FilterResult:
        self.calls.append(video_path)
        await asyncio.sleep(self.config.delay_s)
        if len(self.calls) <= self.config.fail_first:
            raise RuntimeError(f"scripted failure {len(self.calls)}")
        header = video_path.read_bytes()[:12]
        if self.config.reject_non_video and b"ftyp" not in header:
            raise ValueError(f"{video_path.name}: not a video file (no ftyp box)")
        detections = []
        if self.config.box is not None and self.config.classes:
            detections.append(
                Detection(
                    class_name=self.config.classes[0],
                    confidence=0.9,
                    first_seen_s=1.0,
                    box=self.config.box,
                    places=[Place(box=self.config.box, frames=3)]
                    + ([Place(box=self.config.also_at, frames=1)] if self.config.also_at else []),
                )
            )
        return FilterResult(
            detected_classes=list(self.config.classes),
            confidence=0.9 if self.config.classes else 0.0,
            sampled_frames=3,
            model="fake",
            detections=detections,
        )

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class FakeVLMConfig(AnalyzerConfig):
    risk_level: RiskLevel = RiskLevel.HIGH
    activity_type: str = "person_at_door"
    summary: str = "A person walks to the door."
    requires_review: bool = False
    known_entities: list[str] = Field(
        default_factory=list, description="Names it says it recognised (as persons)"
    )
    only_known: bool = False
    delay_s: float = 0.0
    fail: bool = False
    fail_while: Path | None = Field(default=None, description="Fails while this file exists")


@plugin(PluginType.ANALYZER, "fake_vlm", config=FakeVLMConfig)
class FakeVLM:
    def __init__(self, config: FakeVLMConfig) -> None:
        self.config = config
        self.calls: list[str] = []
        self.contexts: list[AnalysisContext] = []

    @classmethod
    def create(cls, config: FakeVLMConfig) -> FakeVLM:
        return cls(config)

    async def analyze(
        self, video_path: Path, filter_result: FilterResult, context: AnalysisContext
    ) -> AnalysisResult:
        self.calls.append(context.clip_id)
        self.contexts.append(context)
        await asyncio.sleep(self.config.delay_s)
        down = self.config.fail_while is not None and self.config.fail_while.exists()
        if self.config.fail or down:
            raise TimeoutError("VLM endpoint timed out")
        return AnalysisResult(
            risk_level=self.config.risk_level,
            activity_type=self.config.activity_type,
            summary=self.config.summary,
            requires_review=self.config.requires_review,
            known_entities=[
                RecognisedEntity(name=name, label="person") for name in self.config.known_entities
            ],
            only_known=self.config.only_known,
        )

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class FailingStorageConfig(PluginConfig):
    message: str = "storage service unavailable"


@plugin(PluginType.STORAGE, "fake_failing_storage", config=FailingStorageConfig)
class FailingStorage:
    """A storage service that is down: every call fails."""

    def __init__(self, config: FailingStorageConfig) -> None:
        self._message = config.message
        self.puts = 0

    @classmethod
    def create(cls, config: FailingStorageConfig) -> FailingStorage:
        return cls(config)

    async def put(self, local_path: Path, dest_key: str) -> UploadOutcome:
        self.puts += 1
        raise ConnectionError(self._message)

    async def get(self, storage_uri: str, local_path: Path) -> None:
        raise ConnectionError(self._message)

    async def exists(self, dest_key: str) -> bool:
        raise ConnectionError(self._message)

    async def put_json(self, obj: Mapping[str, JsonValue], dest_key: str) -> UploadOutcome:
        raise ConnectionError(self._message)

    async def delete(self, dest_key: str) -> None:
        raise ConnectionError(self._message)

    async def ping(self) -> bool:
        return False

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class SwitchableStorageConfig(PluginConfig):
    root: Path
    down_while: Path = Field(description="The storage is down while this file exists")


@plugin(PluginType.STORAGE, "fake_switchable_storage", config=SwitchableStorageConfig)
class SwitchableStorage:
    """Local storage that a test can take down and bring back; logs each successful put."""

    def __init__(self, config: SwitchableStorageConfig) -> None:
        self._down_while = config.down_while
        self._local = load_storage("local", {"root": str(config.root)})
        self.put_log = config.root / "puts.log"

    @classmethod
    def create(cls, config: SwitchableStorageConfig) -> SwitchableStorage:
        return cls(config)

    def _check(self) -> None:
        if self._down_while.exists():
            raise ConnectionError("storage is down")

    async def put(self, local_path: Path, dest_key: str) -> UploadOutcome:
        self._check()
        outcome = await self._local.put(local_path, dest_key)
        with self.put_log.open("a") as log:
            log.write(dest_key + "\n")
        return outcome

    async def get(self, storage_uri: str, local_path: Path) -> None:
        self._check()
        await self._local.get(storage_uri, local_path)

    async def exists(self, dest_key: str) -> bool:
        self._check()
        return await self._local.exists(dest_key)

    async def put_json(self, obj: Mapping[str, JsonValue], dest_key: str) -> UploadOutcome:
        self._check()
        return await self._local.put_json(obj, dest_key)

    async def delete(self, dest_key: str) -> None:
        self._check()
        await self._local.delete(dest_key)

    async def ping(self) -> bool:
        return not self._down_while.exists()

    async def start(self) -> None:
        await self._local.start()

    async def aclose(self) -> None:
        await self._local.aclose()


class RecordingNotifierConfig(NotifierConfig):
    name: str = "recorder"
    fail: bool = False
    fail_while: Path | None = Field(default=None, description="Fails while this file exists")
    log_file: Path | None = Field(default=None, description="Append alerts as JSON lines")
    fail_start: bool = Field(default=False, description="start() raises")
    fail_close: bool = Field(default=False, description="aclose() raises (after taking note)")


@plugin(PluginType.NOTIFIER, "fake_recorder", config=RecordingNotifierConfig)
class RecordingNotifier:
    """Keeps what it is sent (in memory, and in a JSON-lines file when asked)."""

    def __init__(self, config: RecordingNotifierConfig) -> None:
        self.config = config
        self.alerts: list[Alert] = []
        self.snapshots: list[Path | None] = []
        self.system_alerts: list[SystemAlert] = []
        self.health_reports: list[HealthReport] = []
        self.review_counts: list[dict[str, int]] = []
        self.attempts = 0
        self.closed = False

    @classmethod
    def create(cls, config: RecordingNotifierConfig) -> RecordingNotifier:
        return cls(config)

    @property
    def name(self) -> str:
        return self.config.name

    async def start(self) -> None:
        if self.config.fail_start:
            raise ConnectionError("sink refused to start")

    def _check(self) -> None:
        down = self.config.fail_while is not None and self.config.fail_while.exists()
        if self.config.fail or down:
            raise ConnectionError("sink unreachable")

    async def send(self, alert: Alert, snapshot: Path | None = None) -> None:
        self.attempts += 1
        self._check()
        self.alerts.append(alert)
        self.snapshots.append(snapshot)
        if self.config.log_file is not None:
            with self.config.log_file.open("a", encoding="utf-8") as handle:
                handle.write(alert.model_dump_json() + "\n")

    async def send_system(self, alert: SystemAlert) -> None:
        self._check()
        self.system_alerts.append(alert)

    async def publish_health(self, report: HealthReport) -> None:
        self.health_reports.append(report)

    async def publish_reviews(self, waiting: Mapping[str, int]) -> None:
        self.review_counts.append(dict(waiting))

    async def ping(self) -> bool:
        return not self.config.fail

    async def aclose(self) -> None:
        self.closed = True
        if self.config.fail_close:
            raise ConnectionError("sink did not let go")


def read_alert_log(path: Path) -> list[dict[str, JsonValue]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
