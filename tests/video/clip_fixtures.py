"""Fixtures for clips made from the shared media, used by the sampler and the filter tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.video.clips import remux_faststart, splice_clip


@pytest.fixture(scope="session")
def faststart_empty_scene(tmp_path_factory: pytest.TempPathFactory, empty_scene_clip: Path) -> Path:
    """The empty-lawn clip with its MP4 index first, so a cut-off copy still opens."""
    return remux_faststart(empty_scene_clip, tmp_path_factory.mktemp("clips") / "faststart.mp4")


@pytest.fixture(scope="session")
def late_person_clip(
    tmp_path_factory: pytest.TempPathFactory, person_clip: Path, empty_scene_clip: Path
) -> Path:
    """20 s: 16 s of the empty lawn, then 4 s of the front door with its people."""
    return splice_clip(
        tmp_path_factory.mktemp("clips") / "late_1700000200.mp4",
        [(empty_scene_clip, 0.0, 16.0), (person_clip, 0.0, 4.0)],
        size=(640, 360),
    )
