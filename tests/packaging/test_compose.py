"""docs/deploy/docker-compose.yml: HomeSec, Postgres and Mosquitto wired together.

No Docker engine (nor the `docker compose` plugin) where the tests run, so the file is read as
YAML after Compose's `${VAR}` interpolation, done here from a .env of test values.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.packaging.helpers import DEPLOY, env_names, shutdown_timeout_s

COMPOSE = DEPLOY / "docker-compose.yml"
DOT_ENV = {
    "POSTGRES_PASSWORD": "pg-password",
    "HOMESEC_API_KEY": "test-api-key",
    "FRONT_DOOR_RTSP_URL": "rtsp://camera.local/stream",
}
# $$, ${NAME}, ${NAME:-default}, ${NAME:?error}: the forms Compose interpolates.
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")
_DURATION = re.compile(r"(\d+)(h|m|s)")


class ComposeRefusal(Exception):
    """A variable marked required (`${NAME:?error}`) is not set: compose would not start."""


def _interpolated(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name is None:
            return "$"
        if env.get(name):
            return env[name]
        if op is not None and "?" in op:
            raise ComposeRefusal(arg)
        return arg if op else ""

    return _VARIABLE.sub(value, text)


def _compose(env: dict[str, str] = DOT_ENV) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_interpolated(COMPOSE.read_text(), env))
    return loaded


def _seconds(duration: str) -> float:
    factor = {"h": 3600, "m": 60, "s": 1}
    return sum(int(amount) * factor[unit] for amount, unit in _DURATION.findall(duration))


def _mounted_config(homesec: dict[str, Any]) -> Path:
    """The file on this side of the bind mount that the homesec command reads as --config."""
    command: list[str] = homesec["command"]
    target = command[command.index("--config") + 1]
    mounts = [str(volume).split(":") for volume in homesec["volumes"]]
    [source] = [mount[0] for mount in mounts if mount[1] == target]
    return (COMPOSE.parent / source).resolve()


def test_homesec_starts_after_postgres_and_mosquitto_are_healthy() -> None:
    # Given the compose file
    services = _compose()["services"]

    # When its services are read
    homesec = services["homesec"]

    # Then HomeSec, Postgres and Mosquitto each have a health check and restart,
    # and HomeSec waits until both of the others are healthy
    assert set(services) == {"homesec", "postgres", "mosquitto"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
    assert homesec["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "mosquitto": {"condition": "service_healthy"},
    }


def test_every_file_the_compose_file_refers_to_is_next_to_it() -> None:
    # Given the compose file
    services = _compose()["services"]

    # When its bind mounts and the homesec build are listed
    sources = [
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    build = services["homesec"]["build"]

    # Then each exists
    missing = [source for source in sources if not (COMPOSE.parent / source).exists()]
    assert missing == []
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()


def test_homesec_gets_every_variable_its_config_names_and_reaches_postgres_and_mosquitto() -> None:
    # Given the compose file and the config it mounts into the homesec service
    services = _compose()["services"]
    environment = services["homesec"]["environment"]
    config = yaml.safe_load(_mounted_config(services["homesec"]).read_text())

    # When the database URL and the MQTT notifier are read
    dsn = urlsplit(environment[config["state_store"]["dsn_env"]])
    [mqtt] = [notifier for notifier in config["notifiers"] if notifier["backend"] == "mqtt"]
    postgres = services["postgres"]["environment"]

    # Then every `*_env` variable of the config is set in the service's environment
    assert env_names(config) - {name for name, value in environment.items() if value} == set()
    # And the DSN names the postgres service with the credentials it was created with
    assert (dsn.hostname, dsn.username, dsn.password, dsn.path) == (
        "postgres",
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        f"/{postgres['POSTGRES_DB']}",
    )
    # And alerts go to the mosquitto service
    assert (mqtt["config"]["host"], mqtt["config"]["port"]) == ("mosquitto", 1883)


def test_the_compose_file_refuses_to_start_without_its_secrets() -> None:
    # Given a .env that leaves the database password out
    env = {name: value for name, value in DOT_ENV.items() if name != "POSTGRES_PASSWORD"}

    # When the compose file is interpolated
    # Then it is refused, saying which variable to set
    with pytest.raises(ComposeRefusal, match=re.escape("set POSTGRES_PASSWORD in .env")):
        _compose(env)


def test_the_mounted_config_passes_homesec_validate_with_the_compose_environment() -> None:
    # Given the config the homesec service reads, and only the environment compose gives it
    homesec = _compose()["services"]["homesec"]
    env = {"PATH": str(Path(sys.executable).parent), **homesec["environment"]}

    # When `homesec validate` checks it
    result = subprocess.run(
        [Path(sys.executable).parent / "homesec", "validate", "--config", _mounted_config(homesec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it is valid
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_spool_and_the_database_are_kept_in_named_volumes() -> None:
    # Given the compose file and the config it mounts
    compose = _compose()
    homesec, postgres = compose["services"]["homesec"], compose["services"]["postgres"]
    config = yaml.safe_load(_mounted_config(homesec).read_text())

    # When the volumes are read
    named = set(compose["volumes"])

    # Then the spool (every relative path of the config) is in a named volume at HomeSec's
    # working directory, and the database files in another
    assert f"homesec-data:{homesec['working_dir']}" in homesec["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert {"homesec-data", "postgres-data"} <= named
    spool = [config["storage"]["config"]["root"], config["pipeline"]["work_dir"]]
    spool += [camera["source"]["config"]["recordings_dir"] for camera in config["cameras"]]
    assert [path for path in spool if Path(path).is_absolute()] == []


def test_homesec_is_probed_on_its_port_and_given_time_to_finish_clips_on_stop() -> None:
    # Given the compose file and the config it mounts
    homesec = _compose()["services"]["homesec"]
    config_file = _mounted_config(homesec)
    port = yaml.safe_load(config_file.read_text())["server"]["port"]

    # When the health check, the published port and the stop settings are read
    probe = " ".join(homesec["healthcheck"]["test"])

    # Then the probe asks the config's port for /health, which is published
    assert f"http://127.0.0.1:{port}/health" in probe
    assert f"{port}:{port}" in homesec["ports"]
    # And a stop sends SIGTERM and waits longer than in-flight clips are given
    assert homesec["stop_signal"] == "SIGTERM"
    assert _seconds(homesec["stop_grace_period"]) > shutdown_timeout_s(config_file)
