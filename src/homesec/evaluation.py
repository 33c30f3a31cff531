"""`homesec eval`: labelled clips through one or more VLM settings, compared side by side.

The configured filter runs once per clip (its detections feed every prompt); each VLM setting
then analyses every clip. The report gives, per setting: risk-level and activity accuracy,
latency, tokens and estimated cost, so a user can pick a model before changing production.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from homesec.config_loader import analyzer_config
from homesec.errors import ConfigError
from homesec.interfaces import AnalysisContext, ObjectFilter
from homesec.models.clip import parse_clip_id
from homesec.models.config import Config, VLMSection
from homesec.models.enums import RiskLevel
from homesec.models.results import AnalysisResult, FilterResult
from homesec.plugins.registry import load_analyzer

Analyze = Callable[[Path, FilterResult, AnalysisContext], Awaitable[AnalysisResult]]


class LabelledClip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip: Path = Field(description="Video file, relative to the labels file")
    camera: str | None = Field(default=None, description="Camera name (default: from the name)")
    risk_level: RiskLevel
    activity_type: str


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clips: list[LabelledClip] = Field(min_length=1)


@dataclass
class SettingScore:
    """How one VLM setting did over the labelled clips."""

    name: str
    model: str
    risk_hits: int = 0
    activity_hits: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    clips: int = 0

    def add(self, label: LabelledClip, result: AnalysisResult, latency_s: float) -> None:
        self.clips += 1
        self.risk_hits += result.risk_level == label.risk_level
        self.activity_hits += result.activity_type == label.activity_type
        self.latencies_s.append(latency_s)
        if result.usage is not None:
            self.input_tokens += result.usage.input_tokens
            self.output_tokens += result.usage.output_tokens
            self.cost_usd += result.usage.estimated_cost_usd or 0.0

    def add_error(self) -> None:
        self.clips += 1
        self.errors += 1

    @property
    def risk_accuracy(self) -> float:
        return self.risk_hits / self.clips if self.clips else 0.0

    @property
    def activity_accuracy(self) -> float:
        return self.activity_hits / self.clips if self.clips else 0.0

    @property
    def p50_latency_s(self) -> float:
        return statistics.median(self.latencies_s) if self.latencies_s else 0.0


def load_labels(path: Path) -> list[LabelledClip]:
    try:
        labels = Labels.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError([f"{path}: {exc}"], exc) from exc
    return [
        label.model_copy(update={"clip": (path.parent / label.clip).resolve()})
        for label in labels.clips
    ]


def load_vlm_setting(path: Path) -> VLMSection:
    """An alternative VLM setting: a YAML file holding a `vlm:` section like the config's."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return VLMSection.model_validate(raw.get("vlm", raw) if isinstance(raw, dict) else raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError([f"{path}: {exc}"], exc) from exc


async def evaluate(
    config: Config,
    object_filter: ObjectFilter,
    labels: list[LabelledClip],
    settings: dict[str, VLMSection],
) -> list[SettingScore]:
    """Run every labelled clip through every setting; returns one score per setting."""
    detections = [await object_filter.detect(label.clip) for label in labels]
    scores = []
    for name, vlm in settings.items():
        if not vlm.backend:
            raise ConfigError([f"{name}: vlm.backend is required for eval"])
        analyzer = load_analyzer(vlm.backend, analyzer_config(vlm))
        score = SettingScore(name=name, model=str(vlm.config.get("model", vlm.backend)))
        try:
            for label, found in zip(labels, detections, strict=True):
                await _score_one(analyzer.analyze, label, found, config, score)
        finally:
            await analyzer.aclose()
        scores.append(score)
    return scores


async def _score_one(
    analyze: Analyze, label: LabelledClip, found: FilterResult, config: Config, score: SettingScore
) -> None:
    camera = label.camera or _camera_of(label.clip, config)
    context = AnalysisContext(
        clip_id=label.clip.name, camera_name=camera, start_ts=_start_of(label.clip)
    )
    started = time.perf_counter()
    try:
        result = await analyze(label.clip, found, context)
    except Exception:
        score.add_error()
        return
    score.add(label, result, time.perf_counter() - started)


def _camera_of(clip: Path, config: Config) -> str:
    parsed = parse_clip_id(clip.name)
    names = [camera.name for camera in config.cameras]
    return parsed.camera_name if parsed and parsed.camera_name in names else names[0]


def _start_of(clip: Path) -> datetime:
    parsed = parse_clip_id(clip.name)
    seconds = parsed.unix_seconds if parsed else clip.stat().st_mtime
    return datetime.fromtimestamp(seconds, UTC)
