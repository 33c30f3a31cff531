"""Required zones are checked against the cameras' zones, and the policy's modes against
`modes.names`, at start and by `homesec validate`: a typo, or a zone a camera does not have,
would otherwise drop every detection of that camera silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from homesec.app import build_components
from homesec.cli import app
from homesec.errors import ConfigError
from tests.fakes.builders import config_dict, make_config

PORCH = [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]]


def _cameras(tmp_path: Path, zones: dict[str, Any]) -> list[dict[str, Any]]:
    cameras: list[dict[str, Any]] = config_dict(tmp_path)["cameras"]
    cameras[0]["zones"] = zones
    return cameras


def _policy(**config: Any) -> dict[str, Any]:
    return {"backend": "default", "config": config}


@pytest.mark.parametrize(
    ("zones", "policy", "missing"),
    [
        ({"porch": PORCH}, _policy(required_zones=["Porch"]), "Porch"),
        ({}, _policy(required_zones=["porch"]), "porch"),
        ({"porch": PORCH}, _policy(overrides={"front_door": {"required_zones": ["gate"]}}), "gate"),
    ],
)
def test_a_required_zone_the_camera_does_not_have_stops_the_start(
    tmp_path: Path, zones: dict[str, Any], policy: dict[str, Any], missing: str
) -> None:
    # Given a policy that requires a zone the camera does not define (a typo, none at all)
    config = make_config(tmp_path, cameras=_cameras(tmp_path, zones), alert_policy=policy)

    # When HomeSec builds its parts
    with pytest.raises(ConfigError) as refused:
        build_components(config)

    # Then it refuses, naming the camera, the zone and the way out
    [problem] = refused.value.problems
    assert "'front_door'" in problem and missing in problem and "required_zones: []" in problem


def test_required_zones_the_camera_has_or_none_at_all_are_fine(tmp_path: Path) -> None:
    # Given a camera with its porch required, and a policy requiring nothing elsewhere
    with_porch = make_config(
        tmp_path,
        cameras=_cameras(tmp_path, {"porch": PORCH}),
        alert_policy=_policy(required_zones=["porch"]),
    )
    plain = make_config(tmp_path)

    # When HomeSec builds its parts
    # Then both start
    for config in (with_porch, plain):
        assert build_components(config).alert_policy is not None


def test_validate_names_a_required_zone_or_a_mode_that_does_not_exist(tmp_path: Path) -> None:
    # Given a config file whose policy requires a zone the camera lacks, and has settings for
    # a mode that `modes.names` does not list
    config = config_dict(
        tmp_path,
        modes={"names": ["home", "away"]},
        alert_policy=_policy(required_zones=["porch"], modes={"holiday": {"enabled": False}}),
    )
    path = tmp_path / "homesec.yaml"
    path.write_text(yaml.safe_dump(config))

    # When `homesec validate` checks it
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])

    # Then it fails, naming both problems
    assert result.exit_code == 2
    assert "requires the zones porch" in result.output
    assert "settings for the modes holiday" in result.output and "home, away" in result.output


@pytest.mark.parametrize(
    "policy",
    [
        _policy(overrides={"frontdoor": {"min_risk_level": "low"}}),
        _policy(modes={"home": {"overrides": {"frontdoor": {"enabled": False}}}}),
    ],
)
def test_settings_for_a_camera_that_does_not_exist_stop_the_start(
    tmp_path: Path, policy: dict[str, Any]
) -> None:
    # Given a policy with settings for a misspelt camera (in its overrides, or a mode's)
    config = make_config(tmp_path, modes={"names": ["home", "away"]}, alert_policy=policy)

    # When HomeSec builds its parts
    with pytest.raises(ConfigError) as refused:
        build_components(config)

    # Then it refuses, naming the camera and the cameras there are
    [problem] = refused.value.problems
    assert "frontdoor" in problem and "front_door" in problem
