"""`homesec doctor`: each configured part checked against the real services, one table row per
check, exit 1 and what to fix when one fails."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from typer.testing import CliRunner

from homesec.cli import app
from tests.services.mosquitto import ThrowawayBroker
from tests.services.openai_server import OpenAIServer
from tests.services.postgres import free_port
from tests.services.rtsp_server import MakeCamera
from tests.services.s3_server import S3Server, s3_storage_config

MQTT_USER, MQTT_PASSWORD = "homesec", "mqtt-Secret-4821"
VLM_KEY = "sk-doctor-Secret-7731"
CAMERA_USER, CAMERA_PASSWORD = "viewer", "cam-Secret-9034"
DB_PASSWORD = "pg-Secret-5512"
HEALTHY_PARTS = {
    "database",
    "storage (s3)",
    "filter (yolo)",
    "vlm (openai)",
    "notifier (mqtt)",
    "camera yard (local_folder)",
    "camera gate (ftp)",
}
SECRETS = (MQTT_PASSWORD, VLM_KEY, CAMERA_PASSWORD, DB_PASSWORD)


class Row(NamedTuple):
    part: str
    check: str
    result: str
    detail: str


@dataclass
class Setup:
    """A config whose every part works: Postgres, S3 (moto), the yolo model, an OpenAI
    server with the model, a Mosquitto with a login, a folder camera and an FTP camera."""

    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    config: dict[str, Any]
    broker: ThrowawayBroker
    vlm: OpenAIServer

    def doctor(self, *options: str) -> tuple[int, list[Row], str]:
        path = self.tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(self.config))
        result = CliRunner().invoke(app, ["doctor", "--config", str(path), *options])
        return result.exit_code, _rows(result.stdout), result.output

    def add_rtsp_camera(self, url: str) -> None:
        self.monkeypatch.setenv("PORCH_URL", url)
        source = {
            "rtsp_url_env": "PORCH_URL",
            "recordings_dir": str(self.tmp_path / "porch"),
        }
        self.config["cameras"].append(
            {"name": "porch", "source": {"backend": "rtsp", "config": source}}
        )


def _rows(output: str) -> list[Row]:
    rows = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 4 and cells[2] in ("OK", "FAIL"):
            rows.append(Row(*cells))
    return rows


def _failed(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.result == "FAIL"]


@pytest.fixture
def setup(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_dsn: str,
    s3_server: S3Server,
    s3_bucket: str,
    models_dir: Path,
    openai_server: OpenAIServer,
    make_throwaway_broker: Callable[..., ThrowawayBroker],
) -> Setup:
    broker = make_throwaway_broker(users={MQTT_USER: MQTT_PASSWORD})
    openai_server.api_key = VLM_KEY
    openai_server.models = ["llava", "qwen2.5vl"]
    # Trust auth: the password is ignored by the server, but it is in the DSN to be kept out.
    monkeypatch.setenv("DOCTOR_DSN", postgres_dsn.replace("postgres@", f"postgres:{DB_PASSWORD}@"))
    monkeypatch.setenv("DOCTOR_VLM_KEY", VLM_KEY)
    monkeypatch.setenv("DOCTOR_MQTT_USER", MQTT_USER)
    monkeypatch.setenv("DOCTOR_MQTT_PASSWORD", MQTT_PASSWORD)
    monkeypatch.setenv("FTP_USER_GATE", "gate")
    monkeypatch.setenv("FTP_PASSWORD_GATE", "ftp-Secret-1188")
    ftp = {
        "host": "127.0.0.1",
        "port": free_port(),
        "root_dir": str(tmp_path / "ftp"),
        "username_env": "FTP_USER_GATE",
        "password_env": "FTP_PASSWORD_GATE",
    }
    config = {
        "version": 1,
        "cameras": [
            {
                "name": "yard",
                "source": {
                    "backend": "local_folder",
                    "config": {"watch_dir": str(tmp_path / "inbox")},
                },
            },
            {"name": "gate", "source": {"backend": "ftp", "config": ftp}},
        ],
        "storage": {"backend": "s3", "config": s3_storage_config(s3_server, s3_bucket)},
        "state_store": {"dsn_env": "DOCTOR_DSN"},
        "filter": {"backend": "yolo", "config": {"model": str(models_dir / "yolox_nano.onnx")}},
        "vlm": {
            "backend": "openai",
            "run_mode": "trigger_only",
            "config": {
                "base_url": openai_server.base_url,
                "model": "llava",
                "api_key_env": "DOCTOR_VLM_KEY",
            },
        },
        "notifiers": [
            {
                "backend": "mqtt",
                "config": {
                    "host": broker.host,
                    "port": broker.port,
                    "username_env": "DOCTOR_MQTT_USER",
                    "password_env": "DOCTOR_MQTT_PASSWORD",
                },
            }
        ],
        "server": {"enabled": False},
        "pipeline": {"work_dir": str(tmp_path / "work")},
    }
    return Setup(tmp_path, monkeypatch, config, broker, openai_server)


def test_a_working_setup_passes_every_check_and_exits_0(
    setup: Setup,
    s3_server: S3Server,
    s3_bucket: str,
    make_rtsp_camera: MakeCamera,
    still_footage: Path,
) -> None:
    # Given every part working, and an RTSP camera that wants a login
    camera = make_rtsp_camera(still_footage, user=CAMERA_USER, password=CAMERA_PASSWORD)
    setup.add_rtsp_camera(camera.url_with(CAMERA_USER, CAMERA_PASSWORD))

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then it exits 0 with every part's checks passed, in the config's order
    assert code == 0, output
    assert _failed(rows) == []
    checks: dict[str, list[str]] = {}
    for row in rows:
        checks.setdefault(row.part, []).append(row.check)
    assert checks == {
        "database": ["connects", "migrations"],
        "storage (s3)": ["write", "read back", "delete"],
        "filter (yolo)": ["model loads"],
        "vlm (openai)": ["reachable", "model exists"],
        "notifier (mqtt)": ["broker login"],
        "camera yard (local_folder)": ["folder writable"],
        "camera gate (ftp)": ["listen port free"],
        "camera porch (rtsp)": ["stream opens"],
    }
    assert list(checks)[:3] == ["database", "storage (s3)", "filter (yolo)"]
    assert "every check passed" in output
    # And the storage probe is gone, the VLM was asked with the key, and no secret shows
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []
    [models_request] = setup.vlm.requests
    assert models_request.headers["authorization"] == f"Bearer {VLM_KEY}"
    assert not [secret for secret in SECRETS if secret in output]
    assert f"rtsp://***@127.0.0.1:{camera.port}/cam sends video" in output


def test_a_wrong_database_dsn_fails_the_database_and_says_where_to_fix_it(
    setup: Setup, postgres_server: str
) -> None:
    # Given a DSN (with a password) naming a database that does not exist
    setup.monkeypatch.setenv(
        "DOCTOR_DSN", f"postgresql://postgres:{DB_PASSWORD}@{postgres_server}/homesec_missing_db"
    )

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then it exits 1: the database fails, names the variable to fix, and shows no password
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("database", "connects")
    assert 'InvalidCatalogNameError: database "homesec_missing_db" does not exist' in (
        failure.detail
    )
    assert "check the DSN in $DOCTOR_DSN" in failure.detail
    assert {row.part for row in rows} == HEALTHY_PARTS
    assert DB_PASSWORD not in output


def test_a_broker_that_is_down_fails_the_mqtt_login(setup: Setup) -> None:
    # Given the broker is stopped
    setup.broker.stop()

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then only the MQTT notifier fails, saying the broker cannot be reached
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("notifier (mqtt)", "broker login")
    assert f"cannot connect to the broker at {setup.broker.host}:{setup.broker.port}" in (
        failure.detail
    )
    assert "is it running?" in failure.detail


def test_a_wrong_broker_password_fails_the_login_without_showing_it(setup: Setup) -> None:
    # Given the password variable holds a wrong password
    setup.monkeypatch.setenv("DOCTOR_MQTT_PASSWORD", "wrong-Secret-0420")

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then the login is refused, the variables to fix are named, and no password shows
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("notifier (mqtt)", "broker login")
    assert "refused the login" in failure.detail
    assert "$DOCTOR_MQTT_USER and $DOCTOR_MQTT_PASSWORD" in failure.detail
    assert "wrong-Secret-0420" not in output and MQTT_PASSWORD not in output


def test_a_storage_that_cannot_be_written_fails_the_write(
    setup: Setup, s3_server: S3Server
) -> None:
    # Given the storage names a bucket that does not exist
    setup.config["storage"]["config"]["bucket"] = "homesec-no-such-bucket"

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then the storage's write fails with S3's reason and where to look
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("storage (s3)", "write")
    assert "NoSuchBucket" in failure.detail
    assert "check `storage.config`" in failure.detail


def test_a_vlm_model_the_server_lacks_fails_with_what_it_offers(setup: Setup) -> None:
    # Given the server no longer offers the configured model
    setup.vlm.models = ["qwen2.5vl"]

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then the VLM is reachable but its model check fails, listing what there is
    assert code == 1, output
    vlm = [row for row in rows if row.part == "vlm (openai)"]
    assert [(row.check, row.result) for row in vlm] == [
        ("reachable", "OK"),
        ("model exists", "FAIL"),
    ]
    assert "does not offer the model 'llava' (it offers: qwen2.5vl)" in vlm[1].detail
    assert "ollama pull llava" in vlm[1].detail
    assert _failed(rows) == [vlm[1]]


def test_a_wrong_vlm_key_fails_reachable_without_showing_it(setup: Setup) -> None:
    # Given the key variable holds a key the server refuses
    setup.monkeypatch.setenv("DOCTOR_VLM_KEY", "sk-wrong-Secret-3345")

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then the VLM fails at once, naming the variable to fix, and no key shows
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("vlm (openai)", "reachable")
    assert "HTTP 401" in failure.detail
    assert "check the API key in $DOCTOR_VLM_KEY" in failure.detail
    assert "sk-wrong-Secret-3345" not in output and VLM_KEY not in output


def test_an_unreachable_camera_fails_its_stream_without_showing_the_password(
    setup: Setup,
) -> None:
    # Given an RTSP camera whose address nothing answers on
    port = free_port()
    setup.add_rtsp_camera(f"rtsp://{CAMERA_USER}:{CAMERA_PASSWORD}@127.0.0.1:{port}/cam")

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then that camera fails, naming its URL variable, with the credentials redacted
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("camera porch (rtsp)", "stream opens")
    assert "cannot open the stream in $PORCH_URL" in failure.detail
    assert f"127.0.0.1:{port}" in failure.detail
    assert CAMERA_PASSWORD not in output


def test_an_ftp_port_already_taken_fails_the_ftp_camera(setup: Setup) -> None:
    # Given another program listens on the FTP camera's port
    port = setup.config["cameras"][1]["source"]["config"]["port"]
    with socket.create_server(("127.0.0.1", port)):
        # When the doctor runs
        code, rows, output = setup.doctor()

    # Then the FTP camera fails, saying the port is taken
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("camera gate (ftp)", "listen port free")
    assert f"cannot listen on 127.0.0.1:{port}" in failure.detail
    assert "another program" in failure.detail


def test_a_model_file_that_does_not_load_fails_the_filter(setup: Setup) -> None:
    # Given the detector model is not an ONNX model
    broken = setup.tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    setup.config["filter"]["config"]["model"] = str(broken)

    # When the doctor runs
    code, rows, output = setup.doctor()

    # Then the filter fails to load its model, naming the file and where to fix it
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("filter (yolo)", "model loads")
    assert "broken.onnx" in failure.detail
    assert "check `filter.config`" in failure.detail


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung service)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_hung_service_fails_its_check_in_time_instead_of_hanging(
    setup: Setup, silent_server: int
) -> None:
    # Given a storage endpoint that takes connections and never answers, with boto3 set to
    # wait a minute per try
    storage = setup.config["storage"]["config"]
    storage.update(endpoint_url=f"http://127.0.0.1:{silent_server}", read_timeout_s=60)

    # When the doctor runs with 2 s per check
    started = time.monotonic()
    code, rows, output = setup.doctor("--timeout", "2")
    elapsed = time.monotonic() - started

    # Then the storage fails for want of an answer, and the doctor is done in seconds
    assert code == 1, output
    [failure] = _failed(rows)
    assert (failure.part, failure.check) == ("storage (s3)", "write")
    assert "no answer within 2 s" in failure.detail
    assert elapsed < 15
