"""`homesec eval`: VLM settings compared on labelled clips, against real HTTP servers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import tests.fakes.plugins  # noqa: F401
from homesec.cli import app
from tests.fakes.builders import config_dict
from tests.services.openai_server import OpenAIServer, ScriptedReply, serve_openai


def _vlm(base_url: str, model: str) -> dict[str, object]:
    return {
        "backend": "openai",
        "run_mode": "always",
        "config": {"base_url": base_url, "model": model, "max_retries": 0},
        "preprocessing": {"max_frames": 2, "max_size": 256},
    }


@pytest.mark.slow
def test_eval_prints_accuracy_latency_tokens_and_cost_per_setting(
    tmp_path: Path, person_clip: Path, empty_scene_clip: Path, openai_server: OpenAIServer
) -> None:
    # Given two labelled clips, the configured VLM that gets them right, and an alternative
    # VLM (another server) that gets them wrong
    for clip in (person_clip, empty_scene_clip):
        shutil.copyfile(clip, tmp_path / clip.name)
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        yaml.safe_dump(
            {
                "clips": [
                    {"clip": person_clip.name, "risk_level": "high", "activity_type": "loitering"},
                    {
                        "clip": empty_scene_clip.name,
                        "risk_level": "high",
                        "activity_type": "loitering",
                    },
                ]
            }
        )
    )
    openai_server.default_reply = ScriptedReply.analysis(
        risk_level="high", activity_type="loitering"
    )
    config = tmp_path / "config.yaml"
    with serve_openai() as other:
        other.default_reply = ScriptedReply.analysis(risk_level="low", activity_type="delivery")
        config.write_text(
            yaml.safe_dump(config_dict(tmp_path, vlm=_vlm(openai_server.base_url, "good-model")))
        )
        alternative = tmp_path / "cheap.yaml"
        alternative.write_text(yaml.safe_dump({"vlm": _vlm(other.base_url, "cheap-model")}))

        # When eval runs both settings
        result = CliRunner().invoke(
            app,
            [
                "eval",
                "--config",
                str(config),
                "--labels",
                str(labels),
                "--vlm-config",
                str(alternative),
            ],
        )

    # Then the table shows one row per setting with its accuracy and token use
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if "model" in line and "│" in line
    }
    assert "100%" in rows["config"] and "good-model" in rows["config"]
    assert "0%" in rows["cheap"] and "cheap-model" in rows["cheap"]
    assert "2400/300" in rows["config"]
    assert len(openai_server.requests) == 2 and len(other.requests) == 2


def test_eval_refuses_bad_labels_with_a_reason(tmp_path: Path) -> None:
    # Given a labels file with an unknown risk level
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        yaml.safe_dump({"clips": [{"clip": "x.mp4", "risk_level": "huge", "activity_type": "a"}]})
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_dict(tmp_path)))

    # When eval runs
    result = CliRunner().invoke(app, ["eval", "--config", str(config), "--labels", str(labels)])

    # Then it stops with the reason
    assert result.exit_code == 2
    assert "unknown risk level 'huge'" in result.output
