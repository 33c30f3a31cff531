"""docs/deploy/homesec.service: a unit systemd accepts, hardened, whose command really runs.

There is no systemd as PID 1 where the tests run, so the service is started the way systemd
would start it: the unit's ExecStart, WorkingDirectory, Environment and EnvironmentFile, with
its /opt, /etc and /var/lib paths moved into the test's folder, then stopped with its
KillSignal and held to its TimeoutStopSec.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import httpx
import yaml

from tests.packaging.helpers import (
    DEPLOY,
    REPO,
    InstalledWheel,
    env_names,
    shutdown_timeout_s,
)
from tests.services.postgres import free_port

UNIT = DEPLOY / "homesec.service"
ENV_FILE = DEPLOY / "homesec.env"
EXAMPLE_CONFIG = REPO / "config" / "example.yaml"
# systemd's PATH for services; HOME is the home of the unit's User=, its state directory
# (docs/deploy.md).
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
_START_TIMEOUT_S = 60.0

Unit = dict[str, dict[str, list[str]]]


def _parse_unit(text: str) -> Unit:
    # systemd keys may repeat (Environment=), so each key keeps every value in order.
    unit: Unit = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        unit[section][key.strip()].append(value.strip())
    return unit


def _settings(unit: Unit, section: str) -> dict[str, str]:
    # For a setting given once (all but Environment= here), the last value is the one in force.
    return {key: values[-1] for key, values in unit[section].items()}


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {key: value for key, _, value in pairs if key.strip() and not key.startswith("#")}


def _relocated(text: str, root: Path, wheel: InstalledWheel) -> str:
    for system_path, local_path in {
        "/opt/homesec": wheel.venv,
        "/etc/homesec": root / "etc",
        "/var/lib/homesec": root / "state",
    }.items():
        text = text.replace(system_path, str(local_path))
    return text


def test_systemd_analyze_verify_accepts_the_unit(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    # Given the unit with its ExecStart pointed at the installed wheel
    unit = tmp_path / "homesec.service"
    unit.write_text(_relocated(UNIT.read_text(), tmp_path, installed_wheel))

    # When systemd checks it
    result = subprocess.run(
        ["systemd-analyze", "verify", unit], capture_output=True, text=True, check=False
    )

    # Then it reports nothing: every key known, every value valid, the command executable
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_unit_runs_unprivileged_in_a_read_only_system_and_restarts_on_failure() -> None:
    # Given the unit
    unit = _parse_unit(UNIT.read_text())

    # When its settings are read
    service, install = _settings(unit, "Service"), _settings(unit, "Install")

    # Then it drops privileges and writes only its state directory, its working directory
    assert service["User"] not in ("", "root")
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["WorkingDirectory"] == f"/var/lib/{service['StateDirectory']}"
    assert service["WorkingDirectory"] in service["ReadWritePaths"].split()
    # And it comes back after a crash but not after a clean stop, and is started at boot
    assert service["Restart"] == "on-failure"
    assert install["WantedBy"] == "multi-user.target"


def test_the_env_file_names_every_variable_of_the_example_config() -> None:
    # Given the example config the unit's /etc/homesec/homesec.yaml starts from
    named = env_names(yaml.safe_load(EXAMPLE_CONFIG.read_text()))

    # When the unit's example EnvironmentFile is read
    provided = set(_read_env_file(ENV_FILE))

    # Then it sets every variable the config names
    assert named - provided == set()


def test_the_units_command_serves_health_and_stops_on_its_kill_signal_in_time(
    installed_wheel: InstalledWheel, tmp_path: Path, postgres_dsn: str, models_dir: Path
) -> None:
    # Given the unit moved into tmp_path: the installed wheel, /etc/homesec with the example
    # config on a free port and the env file filled in, and the state directory with the models
    unit = _parse_unit(_relocated(UNIT.read_text(), tmp_path, installed_wheel))
    service = _settings(unit, "Service")
    port = free_port()
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config["server"]["port"] = port
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "homesec.yaml").write_text(yaml.safe_dump(config))
    secrets = {"DB_DSN": postgres_dsn, "HOMESEC_API_KEY": "test-api-key"}
    Path(service["EnvironmentFile"]).write_text(
        "".join(f"{key}={secrets[key]}\n" for key in _read_env_file(ENV_FILE))
    )
    working_dir = Path(service["WorkingDirectory"])
    working_dir.mkdir()
    environment = {"PATH": SYSTEMD_PATH, "HOME": str(working_dir)}
    environment |= _read_env_file(Path(service["EnvironmentFile"]))
    environment |= dict(entry.split("=", 1) for entry in unit["Service"]["Environment"])
    Path(environment["HOMESEC_MODEL_DIR"]).symlink_to(models_dir)
    log = tmp_path / "homesec.log"

    # When its ExecStart runs as systemd would start it
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            shlex.split(service["ExecStart"]),
            cwd=working_dir,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        # Then it answers its health probe and serves its web UI from the installed package
        base = f"http://127.0.0.1:{port}"
        _wait_for_health(f"{base}/health", process, log)
        assert httpx.get(f"{base}/ui/static/app.js").status_code == 200
        assert httpx.get(f"{base}/ui/").status_code == 200

        # When it is sent the unit's KillSignal
        process.send_signal(signal.Signals[service["KillSignal"]])

        # Then it exits cleanly within TimeoutStopSec, above the config's shutdown timeout
        stop_timeout = float(service["TimeoutStopSec"])
        assert stop_timeout > shutdown_timeout_s(EXAMPLE_CONFIG)
        assert process.wait(timeout=stop_timeout) == 0, log.read_text()
        # And the config's relative paths landed in the state directory
        assert (working_dir / "var" / "inbox" / "front_door").is_dir()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    answer = "no answer"
    while time.monotonic() < deadline:
        assert process.poll() is None, f"homesec exited: {log.read_text()}"
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return
        answer = f"{response.status_code} {response.text}"
        time.sleep(0.2)
    waited = f"{_START_TIMEOUT_S:.0f} s"
    raise AssertionError(f"{url} not healthy in {waited} ({answer}): {log.read_text()}")
