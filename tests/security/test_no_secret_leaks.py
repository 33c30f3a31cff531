"""`homesec run` with every kind of secret configured never shows one: not in its logs, the
Postgres log sink, the state tables, the e-mails it sends, nor any answer of its API.

The real process runs with secrets in env vars, each used for real: the API key (auth on),
the Postgres DSN's password, an MQTT broker's password, an RTSP camera's password (and a
camera configured with a wrong one, so the failure path logs too), the VLM server's API key,
S3 credentials and an SMTP password. Logging is at DEBUG, where libraries say the most.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import yaml

from homesec.models.enums import ClipStatus
from tests.e2e.helpers import drop_clip, wait_for_state
from tests.fakes.builders import config_dict
from tests.security.secret_scan import SecretScanner, format_leaks
from tests.services.mosquitto import ThrowawayBroker
from tests.services.openai_server import OpenAIServer, ScriptedReply
from tests.services.postgres import free_port
from tests.services.rtsp_server import MakeCamera
from tests.services.s3_server import S3Server, s3_storage_config
from tests.services.smtp_server import SMTPServer

REPO = Path(__file__).parents[2]
CLIP_ID = "front_door_1700000100.mp4"
# Not a secret: the user name env vars are `PlainEnv`, never registered for redaction.
USER = "cam-user"
ENV = {
    "api key": "HOMESEC_LEAK_API_KEY",
    "database dsn": "HOMESEC_LEAK_DSN",
    "mqtt password": "HOMESEC_LEAK_MQTT_PASSWORD",
    "rtsp url": "HOMESEC_LEAK_RTSP_URL",
    "rtsp url, wrong password": "HOMESEC_LEAK_RTSP_URL_WRONG",
    "vlm api key": "HOMESEC_LEAK_VLM_KEY",
    "s3 secret key": "HOMESEC_LEAK_S3_SECRET",
    "smtp password": "HOMESEC_LEAK_SMTP_PASSWORD",
}
# Pages outside the OpenAPI schema; the schema lists the rest.
UI_ROUTES = ["/", "/ui/", "/ui/system", f"/ui/clips/{CLIP_ID}", "/ui/login", "/ui/static/app.js"]


def _secrets() -> dict[str, str]:
    """Fresh values, with characters that URLs must encode where a URL carries them."""
    return {
        "api key": "key-" + secrets.token_urlsafe(18),
        "database password": "db/p@ss:" + secrets.token_urlsafe(12),
        "mqtt password": "mq-" + secrets.token_urlsafe(15),
        "rtsp password": "rt" + secrets.token_hex(10),
        "rtsp wrong password": "wr" + secrets.token_hex(10),
        "vlm api key": "sk-" + secrets.token_urlsafe(24),
        "s3 secret key": secrets.token_urlsafe(30),
        "smtp password": "sm-" + secrets.token_urlsafe(15),
    }


def _config(tmp_path: Path, port: int, services: dict[str, Any]) -> dict[str, Any]:
    rtsp = {"recordings_dir": str(tmp_path / "rec"), "stop_delay_s": 1.0, "hwaccel": "off"}
    raw = config_dict(
        tmp_path,
        state_store={"dsn_env": ENV["database dsn"]},
        storage={"backend": "s3", "config": services["s3"]},
        vlm={
            "backend": "openai",
            "run_mode": "always",
            "config": {
                "base_url": services["vlm_url"],
                "model": "leak-test",
                "api_key_env": ENV["vlm api key"],
            },
            "preprocessing": {"max_frames": 2, "max_size": 256},
        },
        notifiers=[
            {"backend": "mqtt", "config": services["mqtt"]},
            {"backend": "email", "config": services["email"]},
        ],
        server={"enabled": True, "port": port, "auth_enabled": True, "api_key_env": ENV["api key"]},
        logging={"level": "DEBUG"},
    )
    raw["cameras"] += [
        {
            "name": "garden",
            "source": {"backend": "rtsp", "config": {**rtsp, "rtsp_url_env": ENV["rtsp url"]}},
        },
        {
            "name": "gate",
            "source": {
                "backend": "rtsp",
                "config": {**rtsp, "rtsp_url_env": ENV["rtsp url, wrong password"]},
            },
        },
    ]
    return raw


async def _wait_for_http(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            assert process.poll() is None, "homesec exited at start-up"
            try:
                await client.get(f"http://127.0.0.1:{port}/health")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("the API never answered")


async def _wait_for_lines(log: Path, *needles: str) -> None:
    for _ in range(300):
        text = log.read_text(errors="replace")
        if all(needle in text for needle in needles):
            return
        await asyncio.sleep(0.1)


def _clip_for(method: str, path: str) -> str:
    changes_it = method.upper() == "DELETE" or path.endswith("/reanalyse")
    return "front_door_1.mp4" if changes_it else CLIP_ID


async def _every_answer(port: int, api_key: str) -> list[str]:
    """Every route with the key, without it and with a wrong one, plus error answers."""
    good = {"X-API-Key": api_key}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=good) as client:
        schema = (await client.get("/api/v1/openapi.json")).json()
        # The routes that delete or change the clip are asked about another one: the clip
        # and its objects in storage must stay for the checks after the run.
        calls = [
            (method.upper(), path.replace("{clip_id}", _clip_for(method, path)))
            for path, operations in schema["paths"].items()
            for method in operations
        ]
        calls += [("GET", path) for path in UI_ROUTES] + [("GET", "/api/v1/openapi.json")]
        calls += [
            ("GET", "/api/v1/clips/front_door_1.mp4"),
            ("GET", "/api/v1/clips?limit=abc&risk=extreme"),
            ("GET", f"/api/v1/clips/{CLIP_ID}/video?exp=1&sig=forged"),
        ]
        # The signed URL first: wrong keys from this address lock it out for a minute.
        detail = (await client.get(f"/api/v1/clips/{CLIP_ID}")).json()
        signed = await client.get(detail["clip"]["video_url"], headers={"X-API-Key": ""})
        answers = [f"signed video -> {signed.status_code} {signed.headers}"]
        for headers in (good, {"X-API-Key": "wrong-key"}, {"X-API-Key": ""}):
            for method, path in calls:
                response = await client.request(method, path, headers=headers)
                answers.append(f"{method} {path} -> {response.status_code}")
                answers += [f"{name}: {value}" for name, value in response.headers.items()]
                answers.append(response.content.decode("utf-8", errors="replace"))
        login = await client.post("/ui/login", data={"api_key": "not-it", "next": "/ui/"})
        answers += [str(login.headers), login.text]
    return answers


async def _database_text(dsn: str) -> tuple[str, int]:
    """The log sink's rows and the state tables as text, and the number of log rows."""
    connection = await asyncpg.connect(dsn)
    try:
        logs = await connection.fetch("SELECT row_to_json(r)::text AS t FROM log_records r")
        states = await connection.fetch("SELECT data::text AS t FROM clip_states")
        events = await connection.fetch("SELECT data::text AS t FROM clip_events")
    finally:
        await connection.close()
    return "\n".join(row["t"] for row in [*logs, *states, *events]), len(logs)


async def test_a_running_service_shows_no_secret_in_logs_database_mail_or_api(
    tmp_path: Path,
    person_clip: Path,
    walk_in_footage: Path,
    make_rtsp_camera: MakeCamera,
    make_throwaway_broker: Callable[..., ThrowawayBroker],
    make_smtp_server: Callable[..., SMTPServer],
    openai_server: OpenAIServer,
    s3_server: S3Server,
    postgres_dsn: str,
) -> None:
    # Given every kind of secret, each really used by a peer that checks it
    values = _secrets()
    camera = make_rtsp_camera(walk_in_footage, user="viewer", password=values["rtsp password"])
    broker = make_throwaway_broker(users={USER: values["mqtt password"]})
    smtp = make_smtp_server(tls="starttls", users={USER: values["smtp password"]})
    openai_server.api_key = values["vlm api key"]
    openai_server.default_reply = ScriptedReply.analysis(risk_level="high")
    dsn = postgres_dsn.replace(
        "postgresql://postgres@",
        f"postgresql://postgres:{quote(values['database password'], safe='')}@",
    )
    assert dsn != postgres_dsn
    bucket = s3_server.create_bucket()
    env = {
        **os.environ,
        ENV["api key"]: values["api key"],
        ENV["database dsn"]: dsn,
        ENV["mqtt password"]: values["mqtt password"],
        ENV["rtsp url"]: camera.url_with("viewer", values["rtsp password"]),
        ENV["rtsp url, wrong password"]: camera.url_with("viewer", values["rtsp wrong password"]),
        ENV["vlm api key"]: values["vlm api key"],
        "HOMESEC_LEAK_S3_KEY_ID": "AKIAHOMESECLEAKTEST",
        ENV["s3 secret key"]: values["s3 secret key"],
        "HOMESEC_LEAK_SMTP_USER": USER,
        ENV["smtp password"]: values["smtp password"],
        "HOMESEC_LEAK_MQTT_USER": USER,
    }
    services = {
        "s3": s3_storage_config(
            s3_server,
            bucket,
            access_key_id_env="HOMESEC_LEAK_S3_KEY_ID",
            secret_access_key_env=ENV["s3 secret key"],
        ),
        "vlm_url": openai_server.base_url,
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "username_env": "HOMESEC_LEAK_MQTT_USER",
            "password_env": ENV["mqtt password"],
        },
        "email": {
            "host": "localhost",
            "port": smtp.port,
            "security": "starttls",
            "ca_file": str(smtp.ca_file),
            "username_env": "HOMESEC_LEAK_SMTP_USER",
            "password_env": ENV["smtp password"],
            "from_address": "HomeSec <homesec@example.invalid>",
            "to_addresses": ["me@example.invalid"],
        },
    }
    port = free_port()
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(_config(tmp_path, port, services)))
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.run_homesec", "run", "--config", str(config_file)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        # When it processes a dropped clip and a camera's motion, the wrong-password camera
        # keeps failing, and every API route is called with, without and with a wrong key
        await _wait_for_http(port, process)
        drop_clip(
            person_clip,
            Path(config_dict(tmp_path)["cameras"][0]["source"]["config"]["watch_dir"]),
            CLIP_ID,
        )
        await wait_for_state(dsn, CLIP_ID, ClipStatus.DONE, timeout=60)
        await smtp.wait_for(1, timeout=30)
        answers = await _every_answer(port, values["api key"])
        await _wait_for_lines(stderr, "Receiving frames", "401 Unauthorized")
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(process.wait, 60)
    database, log_rows = await _database_text(dsn)

    # Then no secret, in any form, is anywhere
    scanner = SecretScanner(values)
    leaks = scanner.scan_paths([stdout, stderr])
    leaks += scanner.scan_text("\n".join(answers), where="api")
    leaks += scanner.scan_text(database, where="postgres")
    leaks += scanner.scan_text(
        "\n".join(m.message.as_string() for m in smtp.messages), where="mail"
    )
    assert not leaks, format_leaks(leaks)
    # And every secret was really used, and the places scanned really hold the activity
    logs = stderr.read_text() + stdout.read_text()
    assert exit_code == 0, logs[-3000:]
    assert openai_server.requests and smtp.messages[0].auth_user == USER
    assert s3_server.client().list_objects_v2(Bucket=bucket)["KeyCount"] >= 1
    assert log_rows > 0 and CLIP_ID in database
    assert "401 Unauthorized" in logs and "camera_name=gate" in logs  # the wrong password
    assert "Receiving frames" in logs and "camera_name=garden" in logs  # the right one
    statuses = {line.split(" -> ")[1][:3] for line in answers if " -> " in line}
    assert statuses >= {"200", "303", "401", "403", "404", "422", "503"}  # errors scanned too
