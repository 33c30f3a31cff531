"""The YAML configuration's core sections. Plugin sections stay opaque (`backend` + `config`):
each plugin validates its own `config` with its own model when it is loaded."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from homesec.models.clip import is_valid_camera_name
from homesec.models.digest import DigestConfig
from homesec.models.enums import LogFormat, OnExhausted, RiskLevel, RunMode
from homesec.models.env import OptionalSecretEnv
from homesec.models.known import KnownEntity
from homesec.models.modes import ModesConfig, check_timezone
from homesec.models.zones import Zones


def printable(value: object) -> str:
    """`value` as text for a problem line: quoted when it holds a newline or the like
    (problems are printed one per line)."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def _expanded(path: Path) -> Path:
    if "\0" in str(path):
        raise ValueError("a path cannot contain a NUL character")
    try:
        return path.expanduser()
    except RuntimeError as exc:  # `~` with no home folder
        raise ValueError(f"{printable(path)} cannot be used ({exc})") from exc


def _nearest_existing(path: Path) -> Path:
    """The path itself or its nearest parent that exists (`/` at worst)."""
    try:
        return next(p for p in (path, *path.absolute().parents) if p.exists())
    except OSError as exc:  # a parent not searchable, a name too long...
        raise ValueError(f"{printable(path)} cannot be used ({exc.strerror or exc})") from exc


def _kind(path: Path) -> str:
    return "a file" if path.is_file() else "a special file"


def _check_path(path: Path, *, folder: bool) -> Path:
    path = _expanded(path)
    existing = _nearest_existing(path)
    if existing == path and folder and not path.is_dir():
        raise ValueError(f"{printable(path)} is {_kind(path)}, not a folder")
    if existing == path and not folder and path.is_dir():
        raise ValueError(f"{printable(path)} is a folder, not a file")
    if existing != path and not existing.is_dir():
        where = f"{printable(existing)} is {_kind(existing)}"
        raise ValueError(f"{printable(path)} cannot be created: {where}")
    return path


FolderPath = Annotated[Path, AfterValidator(partial(_check_path, folder=True))]
"""A folder HomeSec creates when missing; refused when it, or a parent, is a file."""

FileInFolderPath = Annotated[Path, AfterValidator(partial(_check_path, folder=False))]
"""A file HomeSec creates when missing, in a folder it creates when missing."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginRef(_Section):
    """A plugin chosen by name, with its own config (validated by the plugin)."""

    backend: str = Field(description="Registered plugin name")
    config: dict[str, Any] = Field(default_factory=dict, description="The plugin's own config")


class NotifierRef(PluginRef):
    """A notification sink and which alerts it receives."""

    cameras: list[str] | None = Field(
        default=None, description="Only alerts of these cameras (default: every camera)"
    )
    min_risk_level: RiskLevel | None = Field(
        default=None,
        description="Only alerts at least this risky (alerts without a VLM verdict are skipped)",
    )
    cooldown_s: float = Field(
        default=0.0,
        ge=0,
        description="Per camera: skip alerts within this many seconds of the last one sent",
    )
    system_alerts: bool = Field(
        default=True, description="Also receive system alerts (retries exhausted, camera down)"
    )
    on_detection: bool = Field(
        default=False,
        description="Also receive the early detection event (before the VLM's final alert)",
    )
    digest: bool = Field(default=False, description="Also receive the digest (`digest:`)")


def _check_camera_name(name: str) -> str:
    if not is_valid_camera_name(name):
        raise ValueError(
            "camera name must be 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


class CameraConfig(_Section):
    name: Annotated[str, AfterValidator(_check_camera_name)] = Field(
        description="Used in clip ids, storage keys and MQTT topics"
    )
    source: PluginRef = Field(description="Where this camera's clips come from")
    context: str | None = Field(
        default=None,
        max_length=1000,
        description="What the VLM should know about this camera's view (front door; the "
        "street in the top third is public)",
    )
    zones: Zones = Field(
        default_factory=dict,
        description="Named polygons of the picture, [[x, y], ...] with 0..1 from the top left "
        "(the clip page shows the point under a click); a detection is in a zone when the "
        "bottom-centre of its box is",
    )


class StateStoreConfig(_Section):
    dsn_env: OptionalSecretEnv = Field(
        default="DB_DSN",
        validate_default=True,
        description="Env var holding the Postgres DSN; when unset, SQLite at sqlite_path is used",
    )
    sqlite_path: FileInFolderPath = Field(
        default=Path("var/homesec.db"), description="Embedded database file used without a DSN"
    )
    write_timeout_s: float = Field(
        default=5.0, gt=0, description="A state write slower than this is dropped (logged)"
    )


class VLMPreprocessConfig(_Section):
    max_frames: int = Field(default=10, ge=1, le=64, description="Frames sent per clip")
    max_size: int = Field(default=1024, ge=64, description="Longest side of a frame, pixels")
    quality: int = Field(default=85, ge=1, le=100, description="JPEG quality")


PROVIDER_NAME = r"^[a-z0-9_-]{1,32}$"


class VLMProvider(_Section):
    """A further VLM, tried when the ones before it failed or timed out."""

    name: str = Field(pattern=PROVIDER_NAME, description="Its name in logs, metrics and stats")
    backend: str = Field(description="Analyzer plugin")
    config: dict[str, Any] = Field(default_factory=dict, description="The analyzer's config")
    timeout_s: float | None = Field(
        default=None, gt=0, description="Longest it may take on a clip, retries included"
    )


class VLMBudget(_Section):
    """A daily limit on the VLM; once reached, clips alert on detection alone until midnight."""

    max_calls_per_day: int | None = Field(default=None, ge=1, description="VLM calls a day")
    max_cost_usd_per_day: float | None = Field(
        default=None, gt=0, description="Estimated VLM cost a day, USD (from the token prices)"
    )
    timezone: Annotated[str | None, AfterValidator(check_timezone)] = Field(
        default=None, description="Where the day starts (default: the machine's time zone)"
    )

    @property
    def limited(self) -> bool:
        return self.max_calls_per_day is not None or self.max_cost_usd_per_day is not None


class VLMSection(_Section):
    backend: str | None = Field(default=None, description="Analyzer plugin; needed unless never")
    name: str = Field(
        default="primary", pattern=PROVIDER_NAME, description="This VLM's name in metrics and stats"
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Longest this VLM may take on a clip, retries included, before the "
        "first fallback is asked (default: its own timeouts)",
    )
    fallbacks: list[VLMProvider] = Field(
        default_factory=list,
        description="VLMs tried in order when the one before failed or timed out (a local "
        "server first, a cloud model next)",
    )
    budget: VLMBudget = Field(
        default_factory=VLMBudget, description="A daily limit on VLM calls or their cost"
    )
    run_mode: RunMode = Field(default=RunMode.TRIGGER_ONLY, description="When the VLM runs")
    trigger_classes: list[str] = Field(
        default_factory=lambda: ["person"], description="Classes that trigger it (trigger_only)"
    )
    config: dict[str, Any] = Field(default_factory=dict, description="The analyzer's config")
    preprocessing: VLMPreprocessConfig = Field(
        default_factory=VLMPreprocessConfig, description="How clip frames are sent to the VLM"
    )
    known: list[KnownEntity] = Field(
        default_factory=list,
        max_length=20,
        description="Household members, their vehicles and pets, each with a reference "
        "picture the VLM sees, so a summary can name them",
    )

    @field_validator("known")
    @classmethod
    def _unique_known(cls, known: list[KnownEntity]) -> list[KnownEntity]:
        names = [entity.name for entity in known]
        if len(set(names)) != len(names):
            raise ValueError("each known entity needs a name of its own")
        return known

    @model_validator(mode="after")
    def _backend_when_used(self) -> VLMSection:
        if self.run_mode != RunMode.NEVER and not self.backend:
            raise ValueError(f"vlm.backend is required when run_mode is {self.run_mode}")
        names = [self.name, *(provider.name for provider in self.fallbacks)]
        if len(set(names)) != len(names):
            raise ValueError(f"vlm: each VLM needs a name of its own ({', '.join(names)})")
        return self


class AlertPolicySection(_Section):
    backend: str = Field(default="default", description="Alert policy plugin")
    enabled: bool = Field(default=True, description="When false, no clip alerts")
    config: dict[str, Any] = Field(default_factory=dict, description="The policy's config")


class StationaryConfig(_Section):
    enabled: bool = Field(
        default=False,
        description="Mark detections that stay where the same class stayed in the camera's "
        "recent clips (a parked car, a statue); they trigger neither the VLM nor an alert. "
        "Off by default: the detector then looks at every sampled frame (see the README)",
    )
    min_iou: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description="How much a box must overlap an earlier one to count as not moved",
    )
    after_s: float = Field(
        default=900.0,
        gt=0,
        description="It must have stood there this long already (someone waiting at the door "
        "a few minutes is not an object)",
    )
    lookback_clips: int = Field(
        default=10, ge=1, le=100, description="The camera's recent clips compared with"
    )


class RetentionConfig(_Section):
    max_local_size_bytes: int | None = Field(
        default=1_000_000_000,
        ge=0,
        description="Cap on local clip bytes; the oldest clips that are in storage and done "
        "(or ended in error) are pruned (null: off)",
    )
    min_free_bytes: int = Field(
        default=500_000_000,
        ge=0,
        description="Also prune (the same clips) while the spool's disk has less free space "
        "than this, so recording never stops on a full disk (0: off)",
    )
    sweep_interval_s: float = Field(
        default=60.0, gt=0, description="Also check the cap this often, not only on a new clip"
    )


class ConcurrencyConfig(_Section):
    max_clips_in_flight: int = Field(default=10, ge=1, description="Clips processed at once")
    upload_workers: int = Field(default=3, ge=1, description="Uploads at once")
    filter_workers: int = Field(default=4, ge=1, description="Filter calls at once")
    vlm_workers: int = Field(default=2, ge=1, description="VLM calls at once")
    notify_workers: int = Field(default=4, ge=1, description="Notification fan-outs at once")


class RetryConfig(_Section):
    max_attempts: int = Field(default=3, ge=1, description="Tries per stage, first one included")
    backoff_s: float = Field(default=5.0, ge=0, description="First wait between tries")
    max_backoff_s: float = Field(default=60.0, ge=0, description="Longest wait between tries")
    upload_retry_max_backoff_s: float = Field(
        default=300.0,
        gt=0,
        description="A failed upload is retried in the background forever, at most this far apart",
    )
    on_exhausted: OnExhausted = Field(
        default=OnExhausted.ALERT_AND_CONTINUE,
        description="A stage out of tries is recorded (the clip ends in error, later rounds "
        "try again) and the clip goes on; alert_and_continue also sends a system alert (once "
        "per clip and stage), fail only logs it",
    )
    rerun_initial_s: float = Field(
        default=60.0,
        gt=0,
        description="A clip that ended in error is processed again in the background after "
        "this long, the wait doubling each round",
    )
    rerun_max_backoff_s: float = Field(
        default=3600.0, gt=0, description="Longest wait between two rounds of a clip in error"
    )
    rerun_max_rounds: int = Field(
        default=8,
        ge=0,
        description="Background rounds of a clip in error; after them it stays in error "
        "until the next start (0: only at start)",
    )


class ServerConfig(_Section):
    enabled: bool = Field(default=True, description="Serve the HTTP API")
    host: str = Field(default="127.0.0.1", description="Listen address")
    port: int = Field(default=8081, ge=0, le=65535, description="Listen port (0: any free port)")
    auth_enabled: bool = Field(default=False, description="Require the API key on /api routes")
    api_key_env: OptionalSecretEnv = Field(
        default="HOMESEC_API_KEY",
        validate_default=True,
        description="Env var with the API key (needed with auth)",
    )

    @model_validator(mode="after")
    def _key_when_auth(self) -> ServerConfig:
        if self.auth_enabled:
            self.api_key_env.required()
        return self


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log lines written"
    )
    format: LogFormat = Field(default=LogFormat.TEXT, description="text or json lines")


class PipelineSection(_Section):
    shutdown_timeout_s: float = Field(
        default=30.0, ge=0, description="Time in-flight clips get to finish on shutdown"
    )
    work_dir: FolderPath = Field(
        default=Path("var/work"), description="Scratch space (clips re-downloaded by recovery)"
    )
    camera_unhealthy_alert_s: float = Field(
        default=300.0, gt=0, description="A camera unhealthy this long raises a system alert"
    )


class Config(_Section):
    """The whole configuration file."""

    version: Literal[1] = Field(default=1, description="Version of this file's format")
    cameras: list[CameraConfig] = Field(
        min_length=1, description="The cameras, each with the source of its clips"
    )
    storage: PluginRef = Field(description="Where clips and their analyses are uploaded")
    state_store: StateStoreConfig = Field(
        default_factory=StateStoreConfig,
        description="The database of clip states and events: Postgres, or an SQLite file",
    )
    filter: PluginRef = Field(description="The object detector that decides what is in a clip")
    vlm: VLMSection = Field(
        default_factory=lambda: VLMSection(run_mode=RunMode.NEVER),
        description="The vision-language model that summarizes clips (default: none)",
    )
    alert_policy: AlertPolicySection = Field(
        default_factory=AlertPolicySection, description="What makes a clip worth an alert"
    )
    notifiers: list[NotifierRef] = Field(
        default_factory=list, description="Where alerts go (MQTT, e-mail, push, webhooks)"
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="How much of the local spool is kept"
    )
    concurrency: ConcurrencyConfig = Field(
        default_factory=ConcurrencyConfig, description="How much work runs at once"
    )
    retry: RetryConfig = Field(
        default_factory=RetryConfig, description="How failed stages are tried again"
    )
    stationary: StationaryConfig = Field(
        default_factory=StationaryConfig,
        description="Objects that have not moved since earlier clips (parked cars)",
    )
    modes: ModesConfig = Field(
        default_factory=ModesConfig,
        description="Modes (home, away, night...) the alert policy can differ by",
    )
    digest: DigestConfig = Field(
        default_factory=DigestConfig,
        description="A daily message of what happened (and one on coming home)",
    )
    server: ServerConfig = Field(default_factory=ServerConfig, description="The HTTP API")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log output")
    pipeline: PipelineSection = Field(
        default_factory=PipelineSection, description="Work folder, shutdown and camera alerts"
    )

    @model_validator(mode="after")
    def _unique_cameras(self) -> Config:
        names = [camera.name for camera in self.cameras]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"camera names must be unique: {', '.join(duplicates)}")
        on_mode = self.digest.on_mode
        if on_mode is not None and on_mode not in self.modes.names:
            raise ValueError(f"digest.on_mode: {on_mode!r} is not one of modes.names")
        for index, notifier in enumerate(self.notifiers):
            unknown = sorted(set(notifier.cameras or []) - set(names))
            if unknown:
                raise ValueError(f"notifiers[{index}].cameras: unknown camera {', '.join(unknown)}")
        return self
