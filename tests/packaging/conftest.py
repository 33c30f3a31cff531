"""The built wheel, and a fresh virtual environment it was installed into with plain pip.

The wheel is built with `uv build`. The dependencies come from the lockfile (`uv sync
--no-install-project` into the new environment, from uv's cache when it is warm, so
`UV_OFFLINE=1` runs these tests without a network); the wheel itself is then installed with
`pip install --no-index`, which refuses it unless every dependency its metadata declares is
already there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.helpers import REPO, InstalledWheel, clean_env


def _uv() -> str:
    # `uv run` names itself in $UV; otherwise the uv on PATH.
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv not found: run the tests with `uv run pytest` (scripts/bootstrap.sh installs uv)"
    return uv


def _run(command: list[str | Path], env: dict[str, str], cwd: Path = REPO) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([_uv(), "build", "--wheel", "--out-dir", dist], env=clean_env())
    [wheel] = dist.glob("homesec-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_wheel(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    _run([sys.executable, "-m", "venv", venv], env=clean_env())
    # The locked dependencies (runtime only), then the wheel by pip, offline.
    # `--python` keeps the venv (and its pip) where .python-version asks for another Python.
    python = venv / "bin" / "python"
    sync: list[str | Path] = ["sync", "--locked", "--no-dev", "--no-install-project", "--inexact"]
    _run([_uv(), *sync, "--python", python], env=clean_env(UV_PROJECT_ENVIRONMENT=str(venv)))
    pip: list[str | Path] = [python, "-m", "pip", "install", "--no-index"]
    _run([*pip, "--no-cache-dir", built_wheel], env=clean_env(), cwd=venv)
    return InstalledWheel(built_wheel, venv)
