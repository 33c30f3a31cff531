"""rtsp source, configuration: mistakes are caught when the source is loaded, before it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from homesec.plugins.registry import load_source


def _load(tmp_path: Path, **config: Any) -> object:
    raw = {"camera_name": "cam", "rtsp_url_env": "CAM_URL", "recordings_dir": str(tmp_path)}
    return load_source("rtsp", {**raw, **config})


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"record_everything": True}, "record_everything"),
        ({"max_clip_s": 3.0, "pre_roll_s": 3.0}, "max_clip_s"),
        ({"motion": {"blur_px": 4}}, "blur_px"),
        ({"motion": {"masks": [[[0.1, 0.1], [0.5, 0.5]]]}}, "masks"),
        ({"motion": {"masks": [[[0.1, 0.1], [1.5, 0.5], [0.2, 0.9]]]}}, "masks"),
        ({"rtsp_transport": "http"}, "rtsp_transport"),
        ({"detect_url_env": "NO_SUCH_VARIABLE_FOR_HOMESEC"}, "NO_SUCH_VARIABLE_FOR_HOMESEC"),
    ],
)
def test_a_bad_setting_is_rejected_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], problem: str
) -> None:
    # Given a camera URL in the environment
    monkeypatch.setenv("CAM_URL", "rtsp://127.0.0.1:8554/cam")

    # When a source is loaded with a bad setting
    with pytest.raises(ValidationError) as error:
        _load(tmp_path, **config)

    # Then the error names the setting
    assert problem in str(error.value)


def test_a_url_that_is_not_rtsp_is_rejected_without_showing_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an HTTP URL with a password where an RTSP one belongs
    monkeypatch.setenv("CAM_URL", "http://admin:Sup3r-secret@192.0.2.7/video")

    # When the source is loaded
    with pytest.raises(ValueError, match="rtsp://") as error:
        _load(tmp_path)

    # Then the error says so, without the password
    assert "Sup3r-secret" not in str(error.value)
