"""docs/configuration.md: every config key, generated from the models, kept up to date."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from homesec.cli import app
from homesec.config_reference import undocumented_keys

REFERENCE = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_the_committed_reference_is_what_the_models_generate_now() -> None:
    # Given the committed reference
    committed = REFERENCE.read_text(encoding="utf-8")

    # When the command generates it from the config models
    result = CliRunner().invoke(app, ["config-reference"])

    # Then they are the same: a config key added, changed or removed regenerates the file
    assert result.exit_code == 0, result.output
    assert result.stdout == committed, "docs/configuration.md is out of date: run `make docs`"


def test_every_config_key_has_a_description() -> None:
    # Given the core sections and every installed plugin's config model
    # When their keys are listed
    missing = undocumented_keys()

    # Then each has a description
    assert missing == [], f"keys without a description (add description=...): {missing}"


def test_nested_sections_are_expanded_and_keys_homesec_fills_are_not_keys_to_write() -> None:
    # Given the reference
    result = CliRunner().invoke(app, ["config-reference"])
    rows = {line.split("|")[1].strip() for line in result.stdout.splitlines() if line[:2] == "| "}

    # Then nested sections are listed key by key, with types and defaults
    assert "`vlm.preprocessing.max_frames`" in rows
    assert "`motion.masks`" in rows
    assert "`overrides.<name>.min_risk_level`" in rows
    assert "`cameras[].source.backend`" in rows
    assert "| `retry.max_attempts` | integer, ≥ 1 | `3` |" in result.stdout
    # And the keys HomeSec fills in are named once, not as keys of the file
    assert not {"`camera_name`", "`camera_names`", "`work_dir`", "`preprocessing`"} & rows
    assert "- `camera_name`: Set by HomeSec from the camera's `name`" in result.stdout
