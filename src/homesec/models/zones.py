"""Zones: named polygons of a camera's picture, in normalised coordinates (0..1), so that
they survive a change of resolution. A detection is in a zone when the bottom-centre of its
box (where the feet are) is inside it (edges included)."""

from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np
from pydantic import AfterValidator, Field

Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]


def _check_polygon(points: list[Point]) -> list[Point]:
    area = cv2.contourArea(np.array(points, dtype=np.float32))
    if area <= 0:
        raise ValueError("the points enclose no area (all on one line?)")
    return points


Polygon = Annotated[
    list[Point], Field(min_length=3, max_length=100), AfterValidator(_check_polygon)
]
ZoneName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Zones = dict[ZoneName, Polygon]


def zones_at(zones: Zones, x: float, y: float) -> list[str]:
    """The names of the zones that hold the normalised point (x, y)."""
    return [
        name
        for name, polygon in zones.items()
        if cv2.pointPolygonTest(np.array(polygon, dtype=np.float32), (x, y), False) >= 0
    ]


def zones_of_box(
    zones: Zones, box: tuple[float, float, float, float], width: float, height: float
) -> list[str]:
    """The zones a box (x1, y1, x2, y2 in a `width` x `height` picture) stands in."""
    x1, _, x2, y2 = box
    return zones_at(zones, (x1 + x2) / 2 / width, y2 / height)
