"""Zones: normalised polygons, checked when the config is loaded; where a box stands."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from homesec.models.zones import zones_at, zones_of_box
from tests.fakes.builders import config_dict, make_config

PORCH = [(0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)]
PATH = [(0.0, 0.8), (0.6, 0.8), (0.6, 1.0), (0.0, 1.0)]


def test_a_point_is_in_every_zone_that_holds_it_edges_included() -> None:
    # Given two overlapping zones
    zones = {"porch": PORCH, "path": PATH}

    # When points inside one, both, on an edge and outside are looked up
    # Then each lists the zones that hold it
    assert zones_at(zones, 0.75, 0.6) == ["porch"]
    assert zones_at(zones, 0.55, 0.9) == ["porch", "path"]
    assert zones_at(zones, 0.5, 0.7) == ["porch"]
    assert zones_at(zones, 0.1, 0.1) == []


def test_a_box_stands_where_its_bottom_centre_is() -> None:
    # Given a person whose head is above the porch and whose feet are on it (1920x1080)
    box = (1500.0, 100.0, 1700.0, 900.0)

    # When the box's zones are asked
    # Then the feet decide, not the head
    assert zones_of_box({"porch": PORCH}, box, 1920, 1080) == ["porch"]
    assert zones_of_box({"porch": PORCH}, (1500.0, 100.0, 1700.0, 400.0), 1920, 1080) == []


@pytest.mark.parametrize(
    ("zones", "problem"),
    [
        ({"porch": [(0.1, 0.1), (0.2, 0.2)]}, "at least 3"),
        ({"porch": [(0.1, 0.1), (1.2, 0.1), (0.5, 0.5)]}, "less than or equal to 1"),
        ({"porch": [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]}, "no area"),
        ({"front porch": PORCH}, "pattern"),
    ],
)
def test_a_bad_zone_is_refused_when_the_config_is_loaded(
    tmp_path: Path, zones: dict[str, object], problem: str
) -> None:
    # Given a camera with a zone that is too short, out of the picture, flat or badly named
    raw = config_dict(tmp_path)
    raw["cameras"][0]["zones"] = zones

    # When the config is validated
    with pytest.raises(ValidationError) as refused:
        make_config(tmp_path, cameras=raw["cameras"])

    # Then it is refused, under the camera's zones
    assert problem in str(refused.value)
    assert "zones" in str(refused.value)
