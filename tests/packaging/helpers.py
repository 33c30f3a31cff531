"""What the packaging and deployment tests share: where things are, clean environments."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homesec.models.config import PipelineSection

REPO = Path(__file__).parents[2]
DEPLOY = REPO / "docs" / "deploy"


@dataclass(frozen=True)
class InstalledWheel:
    """A wheel and the virtual environment it was installed into."""

    wheel: Path
    venv: Path

    @property
    def homesec(self) -> Path:
        return self.venv / "bin" / "homesec"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without this checkout's virtual environment or the machine's pip config."""
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith("PIP_")
    }
    return {**env, "PIP_CONFIG_FILE": os.devnull, **extra}


def env_names(node: Any) -> set[str]:
    """Every environment variable a raw config names through its `*_env` keys."""
    return set(_env_names(node))


def _env_names(node: Any) -> Iterator[str]:
    match node:
        case dict():
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str):
                    yield value
                elif str(key).endswith("_env") and isinstance(value, list):
                    yield from value
                else:
                    yield from _env_names(value)
        case list():
            for item in node:
                yield from _env_names(item)


def shutdown_timeout_s(config: Path) -> float:
    """How long the config gives in-flight clips on shutdown."""
    pipeline = yaml.safe_load(config.read_text()).get("pipeline") or {}
    return float(pipeline.get("shutdown_timeout_s", PipelineSection().shutdown_timeout_s))
