"""Domain values used in more than one place: one enum each, no string literals elsewhere."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class ClipStatus(StrEnum):
    """Summary status of a clip, derived from its stage journal."""

    QUEUED_LOCAL = "queued_local"
    UPLOADED = "uploaded"
    FILTERED = "filtered"
    ANALYZED = "analyzed"
    DONE = "done"
    ERROR = "error"


class StageName(StrEnum):
    """The stages a clip goes through, in journal order."""

    UPLOAD = "upload"
    FILTER = "filter"
    VLM = "vlm"
    NOTIFY = "notify"


class StageStatus(StrEnum):
    """Where one stage of one clip stands."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


class EventType(StrEnum):
    """Clip lifecycle events (rows of `clip_events`) and telemetry `event_type` values."""

    CLIP_RECEIVED = "clip_received"
    CLIP_RECOVERED = "clip_recovered"
    STAGE_STARTED = "stage_started"
    STAGE_COMPLETED = "stage_completed"
    STAGE_RETRY = "stage_retry"
    STAGE_FAILED = "stage_failed"
    STAGE_SKIPPED = "stage_skipped"
    DETECTION_SENT = "detection_sent"
    ALERT_DECIDED = "alert_decided"
    ARTIFACT_STORED = "artifact_stored"
    VLM_USAGE = "vlm_usage"
    CLIP_DONE = "clip_done"
    CLIP_FAILED = "clip_failed"
    CLIP_REVIEWED = "clip_reviewed"
    CLIP_DELETED = "clip_deleted"
    REANALYSIS_REQUESTED = "reanalysis_requested"
    LOCAL_FILE_PRUNED = "local_file_pruned"
    STATE_WRITE_DROPPED = "state_write_dropped"
    SYSTEM_ALERT = "system_alert"


class RunMode(StrEnum):
    """When the VLM stage runs."""

    NEVER = "never"
    ALWAYS = "always"
    TRIGGER_ONLY = "trigger_only"


class SystemAlertKind(StrEnum):
    """What a system alert is about (its `kind`)."""

    STAGE_RETRIES_EXHAUSTED = "stage_retries_exhausted"
    SPOOL_OVER_LIMIT = "spool_over_limit"
    CAMERA_UNHEALTHY = "camera_unhealthy"
    CAMERA_RECOVERED = "camera_recovered"
    VLM_BUDGET_REACHED = "vlm_budget_reached"


class OnExhausted(StrEnum):
    """What a stage that gave up after its retries does to its clip."""

    ALERT_AND_CONTINUE = "alert_and_continue"
    FAIL = "fail"


class OnVLMFailure(StrEnum):
    """Whether a clip whose VLM analysis failed still alerts when a trigger class was found."""

    ALERT = "alert"
    SKIP = "skip"


class IngestRefusalReason(StrEnum):
    """Why a clip sent to the HTTP ingest was not taken."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_A_VIDEO = "not_a_video"
    NOT_RUNNING = "not_running"
    NOT_STORED = "not_stored"
    TOO_SLOW = "too_slow"


class ActionRefusal(StrEnum):
    """Why an action on a clip (delete, analyse again) was not carried out."""

    IN_FLIGHT = "in_flight"
    STORAGE_FAILED = "storage_failed"
    NOT_WRITTEN = "not_written"


class DigestTrigger(StrEnum):
    """What made a digest go out."""

    SCHEDULE = "schedule"
    MODE = "mode"


class ModeSetter(StrEnum):
    """Who put HomeSec in its mode."""

    INITIAL = "initial"
    SCHEDULE = "schedule"
    MQTT = "mqtt"
    API = "api"
    UI = "ui"


class SettingKey(StrEnum):
    """Keys of HomeSec's own stored state (the `settings` table)."""

    MODE = "mode"
    DIGEST = "digest"
    VLM_BUDGET = "vlm_budget"


class Weekday(StrEnum):
    """Days of a weekly schedule, in `datetime.weekday()` order."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class PluginType(StrEnum):
    """Plugin kinds; also the prefix of entry-point names (`{kind}.{backend}`)."""

    SOURCE = "source"
    STORAGE = "storage"
    FILTER = "filter"
    ANALYZER = "analyzer"
    ALERT_POLICY = "alert_policy"
    NOTIFIER = "notifier"


class HealthStatus(StrEnum):
    """Overall health reported by the HTTP API."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class LogFormat(StrEnum):
    """How log records are written."""

    TEXT = "text"
    JSON = "json"


class RiskLevel(IntEnum):
    """VLM risk assessment: ordered for comparison, read and written as its lowercase name."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def from_string(cls, value: str) -> RiskLevel:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown risk level {value!r} (expected one of {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def _validate(cls, value: Any) -> RiskLevel:
        match value:
            case RiskLevel():
                return value
            case str():
                return cls.from_string(value)
            case _:
                raise ValueError(f"risk level must be a string, got {type(value).__name__}")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        labels = core_schema.literal_schema([level.label for level in cls])
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            json_schema_input_schema=labels,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda level: level.label, when_used="always", return_schema=labels
            ),
        )
