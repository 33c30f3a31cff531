"""Config loading: every problem reported with its key path, in one line each."""

from __future__ import annotations

import time
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


def _folder_keys(tmp_path: Path, bad: str) -> list[tuple[str, dict[str, Any]]]:
    """Every folder-valued key, set to `bad`, as (key path, config)."""
    base = config_dict(tmp_path)
    camera = base["cameras"][0]
    ftp = {"root_dir": bad, "username_env": "HOMESEC_TEST_FTP", "password_env": "HOMESEC_TEST_FTP"}
    rtsp = {"rtsp_url_env": "HOMESEC_TEST_FTP", "recordings_dir": str(tmp_path / "rec")}

    def with_source(backend: str, config: dict[str, Any]) -> dict[str, Any]:
        return {**base, "cameras": [{**camera, "source": {"backend": backend, "config": config}}]}

    return [
        (
            "cameras[0].source.config.watch_dir",
            with_source("local_folder", {"watch_dir": bad}),
        ),
        ("cameras[0].source.config.root_dir", with_source("ftp", ftp)),
        (
            "cameras[0].source.config.recordings_dir",
            with_source("rtsp", rtsp | {"recordings_dir": bad}),
        ),
        (
            "cameras[0].source.config.segments_dir",
            with_source("rtsp", rtsp | {"segments_dir": bad}),
        ),
        ("storage.config.root", {**base, "storage": {"backend": "local", "config": {"root": bad}}}),
        (
            "filter.config.cache_dir",
            {**base, "filter": {"backend": "yolo", "config": {"cache_dir": bad}}},
        ),
        ("pipeline.work_dir", {**base, "pipeline": {"work_dir": bad}}),
    ]


@pytest.mark.parametrize("key", range(7))
@pytest.mark.parametrize("under_the_file", [False, True])
def test_a_folder_key_naming_a_file_is_refused_with_its_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: int, under_the_file: bool
) -> None:
    # Given a folder-valued key set to a file, or to a path inside a file
    monkeypatch.setenv("HOMESEC_TEST_FTP", "camera")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    bad = a_file / "clips" if under_the_file else a_file
    key_path, raw = _folder_keys(tmp_path, str(bad))[key]

    # When it is validated from the command line
    result = CliRunner().invoke(app, ["validate", "--config", str(_write(tmp_path, raw))])

    # Then it exits 2 with the key path and the file named, on one line
    assert result.exit_code == 2, result.output
    reason = (
        f"cannot be created: {a_file} is a file" if under_the_file else "is a file, not a folder"
    )
    assert f"error: {key_path}: {bad} {reason}" in result.output.splitlines()


def test_the_database_file_in_a_file_or_naming_a_folder_is_refused(tmp_path: Path) -> None:
    # Given a SQLite path inside a file, and one naming a folder
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    inside_a_file = config_dict(tmp_path, state_store={"sqlite_path": str(a_file / "homesec.db")})
    a_folder = config_dict(tmp_path, state_store={"sqlite_path": str(tmp_path)})

    # When each is loaded
    with pytest.raises(ConfigError) as in_file:
        load_config(_write(tmp_path, inside_a_file))
    with pytest.raises(ConfigError) as on_folder:
        load_config(_write(tmp_path, a_folder))

    # Then both are refused at state_store.sqlite_path
    assert in_file.value.problems == [
        f"state_store.sqlite_path: {a_file / 'homesec.db'} cannot be created: {a_file} is a file"
    ]
    assert on_folder.value.problems == [
        f"state_store.sqlite_path: {tmp_path} is a folder, not a file"
    ]


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": each level a list of `width` aliases of the level before."""
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    # Given a config whose aliases expand to 9^8 values
    path = _write(tmp_path, _alias_bomb())

    # When it is validated
    started = time.monotonic()
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    elapsed = time.monotonic() - started

    # Then it is refused with a reason, without expanding it (a guard, not a benchmark)
    assert result.exit_code == 2, result.output
    assert "too large once YAML aliases are expanded (over 100,000 values)" in result.output
    assert elapsed < 5


def test_a_config_with_a_few_aliases_still_validates(tmp_path: Path) -> None:
    # Given a valid config where two cameras share their source settings through an anchor
    base = config_dict(tmp_path)
    text = yaml.safe_dump({key: value for key, value in base.items() if key != "cameras"})
    text += (
        "cameras:\n"
        "  - name: front_door\n"
        "    source: {backend: local_folder, config: &watch {watch_dir: "
        f"'{tmp_path / 'inbox'}', poll_interval_s: 0.1}}}}\n"
        "  - name: garage\n"
        "    source: {backend: local_folder, config: *watch}\n"
    )

    # When it is loaded
    config = load_config(_write(tmp_path, text))

    # Then both cameras have the shared settings
    assert [camera.source.config for camera in config.cameras] == [
        {"watch_dir": str(tmp_path / "inbox"), "poll_interval_s": 0.1}
    ] * 2


def test_a_config_file_of_megabytes_is_refused_unread(tmp_path: Path) -> None:
    # Given a config file of 5 MB
    path = tmp_path / "config.yaml"
    path.write_bytes(b"# padding\n" * 500_000)

    # When it is validated
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])

    # Then it is refused for its size
    assert result.exit_code == 2
    assert "too large for a config file (over 4,194,304 bytes)" in result.output
