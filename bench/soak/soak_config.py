"""The HomeSec config the campaign runs with, and the secrets it hands over in env vars."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A small cap, so retention must keep deleting uploaded clips (the "disk filling" fault).
RETENTION_CAP_BYTES = 6_000_000
RETENTION_SWEEP_S = 5.0
VLM_TIMEOUT_S = 4.0
FTP_USER = "gatecam"


@dataclass(frozen=True)
class SoakSecrets:
    """Random values per run, so a leak cannot hide behind a coincidence."""

    s3_key_id: str
    s3_secret: str
    vlm_key: str
    ftp_password: str
    rtsp_password: str
    api_key: str

    @classmethod
    def fresh(cls) -> SoakSecrets:
        def token(prefix: str) -> str:
            return f"{prefix}{secrets.token_hex(12)}"

        return cls(
            token("AKSOAK"), token("s3secret"), token("sk-soak"), token("ftp"),
            token("rtsp"), token("api"),
        )  # fmt: skip

    def named(self) -> dict[str, str]:
        return {
            "S3 secret key": self.s3_secret,
            "VLM API key": self.vlm_key,
            "FTP password": self.ftp_password,
            "RTSP password": self.rtsp_password,
            "API key": self.api_key,
        }


@dataclass(frozen=True)
class Endpoints:
    s3: str
    bucket: str
    vlm: str
    broker: tuple[str, int]
    ftp_port: int
    api_port: int
    topic_prefix: str


ENV = {
    "db": "SOAK_DB_DSN",
    "s3_key_id": "SOAK_S3_KEY_ID",
    "s3_secret": "SOAK_S3_SECRET",
    "vlm_key": "SOAK_VLM_KEY",
    "ftp_user": "SOAK_FTP_USER",
    "ftp_password": "SOAK_FTP_PASSWORD",
    "api_key": "SOAK_API_KEY",
}


def rtsp_env(index: int) -> str:
    return f"SOAK_RTSP_URL_{index}"


def build_config(
    work: Path, model: Path, ends: Endpoints, folders: list[str], ftp: str, rtsp: list[str]
) -> dict[str, Any]:
    cameras: list[dict[str, Any]] = [
        {"name": name, "source": {"backend": "local_folder", "config": {
            "watch_dir": str(work / "inbox" / name), "poll_interval_s": 0.5, "settle_s": 1.0}}}
        for name in folders
    ]  # fmt: skip
    cameras.append({"name": ftp, "source": {"backend": "ftp", "config": {
        "host": "127.0.0.1", "port": ends.ftp_port, "root_dir": str(work / "ftp"),
        "username_env": ENV["ftp_user"], "password_env": ENV["ftp_password"],
        "login_failure_delay_s": 0}}})  # fmt: skip
    cameras += [
        {"name": name, "source": {"backend": "rtsp", "config": {
            "rtsp_url_env": rtsp_env(i), "recordings_dir": str(work / "rtsp" / name),
            "pre_roll_s": 2.0, "stop_delay_s": 1.5, "max_clip_s": 20.0,
            "frame_timeout_s": 3.0, "reconnect_initial_s": 0.5, "reconnect_max_s": 4.0,
            "hwaccel": "off", "audio": "off"}}}
        for i, name in enumerate(rtsp)
    ]  # fmt: skip
    prefix = ends.topic_prefix
    return {
        "cameras": cameras,
        "storage": {"backend": "s3", "config": {
            "bucket": ends.bucket, "endpoint_url": ends.s3, "region": "us-east-1",
            "addressing_style": "path", "access_key_id_env": ENV["s3_key_id"],
            "secret_access_key_env": ENV["s3_secret"], "connect_timeout_s": 3,
            "read_timeout_s": 15, "max_attempts": 2}},
        "state_store": {"dsn_env": ENV["db"], "write_timeout_s": 2.0},
        "filter": {"backend": "yolo", "config": {
            "model": str(model), "classes": ["person"], "sample_fps": 1.0}},
        "vlm": {"backend": "openai", "run_mode": "trigger_only", "config": {
            "base_url": ends.vlm, "model": "soak-vlm", "api_key_env": ENV["vlm_key"],
            "timeout_s": VLM_TIMEOUT_S, "max_retries": 1},
            "preprocessing": {"max_frames": 4, "max_size": 512}},
        "alert_policy": {"backend": "default", "config": {"min_risk_level": "low"}},
        "notifiers": [{"backend": "mqtt", "config": {
            "host": ends.broker[0], "port": ends.broker[1],
            "topic_template": prefix + "/alerts/{camera_name}",
            "system_topic": f"{prefix}/system/errors"}}],
        "retention": {"max_local_size_bytes": RETENTION_CAP_BYTES, "min_free_bytes": 0,
                      "sweep_interval_s": RETENTION_SWEEP_S},
        "concurrency": {"max_clips_in_flight": 6, "upload_workers": 2, "filter_workers": 2},
        # The cameras replay the same footage: its people stand in the same boxes clip after
        # clip, which is exactly what a parked car looks like. The soak checks every person.
        "stationary": {"enabled": False},
        "retry": {"max_attempts": 3, "backoff_s": 0.5, "max_backoff_s": 2.0,
                  "upload_retry_max_backoff_s": 4.0},
        "server": {"enabled": True, "host": "127.0.0.1", "port": ends.api_port,
                   "auth_enabled": True, "api_key_env": ENV["api_key"]},
        "logging": {"level": "INFO", "format": "text"},
        "pipeline": {"shutdown_timeout_s": 20, "work_dir": str(work / "scratch"),
                     "camera_unhealthy_alert_s": 30},
    }  # fmt: skip


def secret_env(values: SoakSecrets, dsn: str, rtsp_urls: list[str]) -> dict[str, str]:
    env = {
        ENV["db"]: dsn,
        ENV["s3_key_id"]: values.s3_key_id,
        ENV["s3_secret"]: values.s3_secret,
        ENV["vlm_key"]: values.vlm_key,
        ENV["ftp_user"]: FTP_USER,
        ENV["ftp_password"]: values.ftp_password,
        ENV["api_key"]: values.api_key,
    }
    env.update({rtsp_env(i): url for i, url in enumerate(rtsp_urls)})
    return env
