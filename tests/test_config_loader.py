"""Config loading: every problem reported with its key path, in one line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from homesec.cli import app
from homesec.config_loader import load_config
from homesec.errors import ConfigError
from tests.fakes.builders import config_dict

REPO = Path(__file__).parents[1]


def _write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw), encoding="utf-8")
    return path


def _camera(tmp_path: Path, **source_config: Any) -> dict[str, Any]:
    return {"name": "driveway", "source": {"backend": "local_folder", "config": source_config}}


def _broken(tmp_path: Path) -> list[tuple[str, Any, str]]:
    base = config_dict(tmp_path)
    return [
        ("not yaml", "cameras: [\n  - name: x\n bad", "config.yaml: "),
        ("not a mapping", "- just\n- a list\n", "must be a mapping"),
        ("no cameras", {**base, "cameras": []}, "cameras: list should have at least 1 item"),
        (
            "missing source key",
            {**base, "cameras": [base["cameras"][0], _camera(tmp_path)]},
            "cameras[1].source.config.watch_dir: field required",
        ),
        ("unknown top key", {**base, "mqttt": {}}, "mqttt: unknown key"),
        (
            "unknown plugin key",
            {**base, "storage": {"backend": "local", "config": {"root": "x", "bucket": "y"}}},
            "storage.config.bucket: unknown key",
        ),
        (
            "unknown backend",
            {**base, "storage": {"backend": "ftpp", "config": {}}},
            "storage.backend: unknown storage backend 'ftpp' (available: ",
        ),
        (
            "bad risk level",
            {**base, "alert_policy": {"backend": "default", "config": {"min_risk_level": "huge"}}},
            "alert_policy.config.min_risk_level: unknown risk level 'huge'",
        ),
        (
            "bad run mode",
            {**base, "vlm": {"backend": "fake_vlm", "run_mode": "sometimes"}},
            "vlm.run_mode: input should be 'never', 'always' or 'trigger_only'",
        ),
        (
            "vlm without backend",
            {**base, "vlm": {"run_mode": "always"}},
            "vlm: vlm.backend is required when run_mode is always",
        ),
        (
            "duplicate cameras",
            {**base, "cameras": [base["cameras"][0], base["cameras"][0]]},
            "camera names must be unique: front_door",
        ),
        (
            "bad camera name",
            {**base, "cameras": [{**base["cameras"][0], "name": "front door/../x"}]},
            "cameras[0].name: camera name must be",
        ),
        (
            "negative retry",
            {**base, "retry": {"max_attempts": 0}},
            "retry.max_attempts: input should be greater than or equal to 1",
        ),
        (
            "secret written in the file",
            {
                **base,
                "notifiers": [{"backend": "fake_recorder", "config": {"password": "hunter2"}}],
            },
            "notifiers[0].config.password: secrets are never written in the config",
        ),
        (
            "api key env var missing",
            {**base, "server": {"auth_enabled": True, "api_key_env": "HOMESEC_TEST_UNSET_KEY"}},
            "environment variable HOMESEC_TEST_UNSET_KEY is not set",
        ),
    ]


def test_example_config_documents_a_valid_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the shipped example and local configs
    # When they are loaded
    example = load_config(REPO / "config" / "example.yaml")
    local = load_config(REPO / "config" / "local.yaml")

    # Then they validate, plugin sections included
    assert example.cameras[0].name == "front_door"
    assert local.storage.backend == "local"


@pytest.mark.parametrize("case", range(15))
def test_broken_config_gives_a_one_line_reason_with_its_key_path(tmp_path: Path, case: int) -> None:
    # Given a broken config file
    name, raw, expected = _broken(tmp_path)[case]
    path = _write(tmp_path, raw)

    # When it is validated from the command line
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])

    # Then it exits non-zero, with the key path and reason on one line and no traceback
    assert result.exit_code == 2, name
    assert expected in result.output, f"{name}: {result.output}"
    assert "Traceback" not in result.output
    assert all(line.startswith("error: ") for line in result.output.splitlines() if line)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    # Given a config with two unrelated mistakes
    raw = config_dict(tmp_path, retry={"max_attempts": 0}, mqttt={})

    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, raw))

    # Then both are listed
    assert len(caught.value.problems) == 2


def test_valid_config_passes_validate(tmp_path: Path) -> None:
    # Given a valid config
    path = _write(tmp_path, config_dict(tmp_path))

    # When it is validated
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])

    # Then it exits 0
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    # Given a path with no file
    # When it is validated
    result = CliRunner().invoke(app, ["validate", "--config", str(tmp_path / "nope.yaml")])

    # Then the reason is given without a traceback
    assert result.exit_code == 2
    assert "cannot read config file" in result.output
