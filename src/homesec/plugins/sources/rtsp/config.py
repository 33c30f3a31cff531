"""Configuration of the `rtsp` source: the camera's streams, the recording and motion detection.

URLs are never in the YAML: `rtsp_url_env` (and `detect_url_env`) name environment variables
holding them, credentials included (`rtsp://user:password@host/path`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from homesec.interfaces import SourceConfig
from homesec.models.config import FolderPath
from homesec.models.env import SecretEnv
from homesec.plugins.sources.rtsp.hardware import HWACCEL_AUTO

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
Polygon = Annotated[list[Point], Field(min_length=3)]


class MotionConfig(BaseModel):
    """How motion is found in the detect stream (grayscale, small, a few frames a second)."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(
        default=640, ge=64, le=1920, description="Width the detect stream is scaled down to, pixels"
    )
    fps: float = Field(default=5.0, gt=0, le=30, description="Frames a second examined")
    blur_px: int = Field(
        default=3,
        ge=1,
        le=31,
        description="Gaussian blur kernel (odd) that evens out noise, in pixels of the "
        "analysed picture (half the detect width)",
    )
    background_alpha: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="How fast the background model follows the picture: the weight of each "
        "new frame. Higher absorbs light changes and the trail left by someone who stopped "
        "or left sooner; lower keeps very slow movers visible longer",
    )
    pixel_threshold: int = Field(
        default=25, ge=1, le=255, description="Gray-level change for a pixel to count as changed"
    )
    min_contour_area: float = Field(
        default=0.0005,
        ge=0,
        le=1,
        description="Changed blobs smaller than this share of the picture are ignored "
        "(noise, insects, rain)",
    )
    min_changed_area: float = Field(
        default=0.002,
        gt=0,
        le=1,
        description="Share of the picture the kept blobs must cover to count as motion "
        "(lower: more sensitive)",
    )
    max_changed_area: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="A change over this share of the picture is taken for a light change "
        "(day/night switch, clouds): the background is reset and no motion is reported",
    )
    min_motion_frames: int = Field(
        default=2, ge=1, le=50, description="Consecutive motion frames needed to start a clip"
    )
    masks: list[Polygon] = Field(
        default_factory=list,
        description="Areas to ignore (trees, a street), each a polygon of [x, y] points given "
        "as fractions of the picture's width and height (0 to 1, top-left origin)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MotionConfig:
        if self.blur_px % 2 == 0:
            raise ValueError("blur_px must be odd")
        if self.min_changed_area >= self.max_changed_area:
            raise ValueError("min_changed_area must be below max_changed_area")
        return self


class RTSPSourceConfig(SourceConfig):
    """One camera: motion found on the detect stream, clips copied from the main stream."""

    rtsp_url_env: SecretEnv = Field(
        description="Env var holding the main stream's URL (recorded without re-encoding)"
    )
    detect_url_env: SecretEnv | None = Field(
        default=None,
        description="Env var holding a low-resolution sub-stream's URL for motion detection "
        "(default: the main stream, decoded and scaled down, which costs more CPU)",
    )
    rtsp_transport: Literal["tcp", "udp"] = Field(
        default="tcp", description="RTSP transport; TCP loses no packets on busy networks"
    )
    recordings_dir: FolderPath = Field(
        description="Folder of this camera's finished clips, created when missing"
    )
    segments_dir: FolderPath | None = Field(
        default=None,
        description="Folder of the rolling buffer of short segments the pre-roll comes from, "
        "in a sub-folder per camera (default: `.buffer` inside recordings_dir; a tmpfs "
        "spares the disk)",
    )
    pre_roll_s: float = Field(
        default=3.0, ge=0, le=30, description="Seconds a clip starts before the motion began"
    )
    stop_delay_s: float = Field(
        default=5.0, gt=0, description="A clip ends after this many seconds without motion"
    )
    max_clip_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest clip, pre-roll included; longer motion continues in a new clip",
    )
    frame_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="No frame for this long means the stream stalled: reconnect "
        "(unhealthy after three times this)",
    )
    reconnect_initial_s: float = Field(
        default=1.0, gt=0, description="First wait before reconnecting (doubles, with jitter)"
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between reconnection attempts"
    )
    hwaccel: str = Field(
        default=HWACCEL_AUTO,
        description="Hardware decoding of the detect stream: auto, off, or a name from "
        "`ffmpeg -hwaccels` (cuda, vaapi, qsv...); falls back to software when it fails",
    )
    audio: Literal["aac", "copy", "off"] = Field(
        default="aac",
        description="Audio in clips: aac re-encodes it (cheap; G.711 cannot go in MP4), "
        "copy keeps the camera's AAC as is, off drops it",
    )
    motion: MotionConfig = Field(
        default_factory=MotionConfig, description="Motion detection settings"
    )

    @model_validator(mode="after")
    def _consistent_times(self) -> RTSPSourceConfig:
        if self.max_clip_s <= self.pre_roll_s + 1:
            raise ValueError("max_clip_s must exceed pre_roll_s by more than a second")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self
