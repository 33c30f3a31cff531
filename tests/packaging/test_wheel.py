"""The wheel `uv build` makes: everything HomeSec loads at run time, and it runs installed."""

from __future__ import annotations

import email.parser
import subprocess
import zipfile
from pathlib import Path

from packaging.specifiers import SpecifierSet

from tests.packaging.helpers import REPO, InstalledWheel, clean_env

PACKAGE = REPO / "src" / "homesec"


def _wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _package_files() -> set[str]:
    return {
        f"homesec/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_every_file_of_the_package_templates_migrations_and_static_files(
    built_wheel: Path,
) -> None:
    # Given the wheel built from this checkout
    # When its files are listed
    files = _wheel_files(built_wheel)

    # Then every file of src/homesec is in it, the data that is loaded at run time included
    assert _package_files() - files == set()
    assert {
        "homesec/state/migrations/env.py",
        "homesec/state/migrations/script.py.mako",
        "homesec/state/migrations/versions/0001_create_clip_tables.py",
        "homesec/api/ui/templates/base.html",
        "homesec/api/ui/static/app.js",
        "homesec/plugins/notifiers/templates/email_alert.html.j2",
    } <= files


def test_the_wheel_installs_on_python_3_11_to_3_13(built_wheel: Path) -> None:
    # Given the wheel's metadata
    with zipfile.ZipFile(built_wheel) as archive:
        [metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        headers = email.parser.Parser().parsestr(archive.read(metadata).decode())

    # When pip reads which Pythons it accepts
    accepted = SpecifierSet(headers["Requires-Python"])

    # Then Debian 12 (3.11), Ubuntu 24.04 (3.12) and Debian 13 (3.13) are among them
    refused = [version for version in ("3.11.2", "3.12.3", "3.13.5") if version not in accepted]
    assert refused == [], f"Requires-Python {accepted} refuses {refused}"


def test_the_installed_wheel_validates_the_example_config_outside_the_source_tree(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    # Given the example config copied out of the checkout, and the variables it names
    config = tmp_path / "homesec.yaml"
    config.write_text((REPO / "config" / "example.yaml").read_text())
    env = clean_env(DB_DSN="postgresql://homesec@localhost/homesec", HOMESEC_API_KEY="dummy-key")

    # When the installed `homesec validate` runs from another folder
    result = subprocess.run(
        [installed_wheel.homesec, "validate", "--config", config.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    imported = subprocess.run(
        [installed_wheel.python, "-c", "import homesec; print(homesec.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    # Then the config is valid, checked by the installed package, not by the source tree
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "homesec.yaml: OK"
    assert Path(imported).is_relative_to(installed_wheel.venv)
