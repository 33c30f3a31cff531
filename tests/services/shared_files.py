"""The media clips and detector models in ../shared (tests and benchmarks only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(os.environ.get("HOMESEC_SHARED_DIR", Path(__file__).parents[3] / "shared"))
MEDIA_DIR = SHARED_DIR / "media"
MODELS_DIR = SHARED_DIR / "models"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    assert MEDIA_DIR.is_dir(), f"shared media not found at {MEDIA_DIR}"
    return MEDIA_DIR


@pytest.fixture(scope="session")
def models_dir() -> Path:
    assert MODELS_DIR.is_dir(), f"shared models not found at {MODELS_DIR}"
    return MODELS_DIR


@pytest.fixture(scope="session")
def person_clip(media_dir: Path) -> Path:
    """20 s at 1080p with several people from the first frame."""
    return media_dir / "front_door_1700000000.mp4"


@pytest.fixture(scope="session")
def empty_scene_clip(media_dir: Path) -> Path:
    """20 s at 1080p of an empty lawn: no person, no vehicle."""
    return media_dir / "backyard_1700000100.mp4"
