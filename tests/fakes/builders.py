"""Builders for configs and clips used across the tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homesec.models.clip import Clip
from homesec.models.config import Config


def config_dict(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A minimal valid config (fake filter, local storage, SQLite), sections replaced."""
    base: dict[str, Any] = {
        "version": 1,
        "cameras": [
            {
                "name": "front_door",
                "source": {
                    "backend": "local_folder",
                    "config": {
                        "watch_dir": str(tmp_path / "inbox" / "front_door"),
                        "poll_interval_s": 0.1,
                        "settle_s": 0.2,
                    },
                },
            }
        ],
        "storage": {"backend": "local", "config": {"root": str(tmp_path / "storage")}},
        "state_store": {"dsn_env": "HOMESEC_TEST_NO_DSN", "sqlite_path": str(tmp_path / "s.db")},
        "filter": {"backend": "fake_filter", "config": {}},
        "vlm": {"backend": "fake_vlm", "run_mode": "trigger_only", "config": {}},
        "alert_policy": {"backend": "default", "config": {"min_risk_level": "medium"}},
        "notifiers": [],
        "retry": {"max_attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.05},
        "server": {"enabled": False},
        "pipeline": {"shutdown_timeout_s": 5, "work_dir": str(tmp_path / "work")},
    }
    base.update(sections)
    return base


def make_config(tmp_path: Path, **sections: Any) -> Config:
    return Config.model_validate(config_dict(tmp_path, **sections))


def clip_from(
    source: Path, directory: Path, camera: str = "front_door", ts: int = 1700000000
) -> Clip:
    """Copy a media file into `directory` under the clip_id rule and describe it."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{camera}_{ts}{source.suffix}"
    shutil.copyfile(source, target)
    start = datetime.fromtimestamp(ts, UTC)
    return Clip(
        clip_id=target.name,
        camera_name=camera,
        local_path=target,
        start_ts=start,
        end_ts=start,
        duration_s=20.0,
        source_backend="test",
    )


def switchable_storage(tmp_path: Path, down_while: Path) -> dict[str, Any]:
    """The `storage` section of local storage under tmp_path that is down while a file exists."""
    return {
        "backend": "fake_switchable_storage",
        "config": {"root": str(tmp_path / "storage"), "down_while": str(down_while)},
    }
