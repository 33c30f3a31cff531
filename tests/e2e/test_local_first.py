"""Local-first: `homesec run` reaches only the endpoints in its config and writes only to the
folders in it, its dependencies and its detector workers included.

The real service runs under `strace -f`, which records every connection attempt (`connect`,
`sendto`, `sendmsg`) and every file opened for writing by it and every process it starts,
while one clip goes through the whole pipeline: detector, VLM, storage, MQTT alert.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import homesec
from homesec.models.alert import Alert
from tests.e2e.helpers import drop_clip
from tests.fakes.builders import config_dict
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber
from tests.services.openai_server import OpenAIServer, ScriptedReply
from tests.services.postgres import free_port

STRACE = "/usr/bin/strace"
# Every process it starts too (-f); descriptors shown with their files (-y), so a path
# relative to a directory descriptor resolves; data cut short (-s 16), addresses in full.
_STRACE_OPTIONS = [
    *("-f", "--seccomp-bpf", "-qq", "-y", "-s", "16"),
    *("-e", "trace=connect,sendto,sendmsg,open,openat,creat"),
]
CLIP_ID = "front_door_1700000060.mp4"
_ADDRESS = re.compile(r"\{sa_family=AF_(?P<family>\w+), (?P<fields>[^}]*)\}")
_INET = re.compile(r'(?:sin_port|sin6_port)=htons\((?P<port>\d+)\).*?"(?P<host>[^"]+)"')
_UNIX = re.compile(r'sun_path=(?P<path>@?"[^"]*")')
# With -y strace names each descriptor's file: `openat(3</some/dir>, "name", O_RDONLY)`.
_OPEN = re.compile(
    r'^\d+\s+(?P<call>openat|open|creat)\((?:(?:AT_FDCWD|\d+)<(?P<dir>[^>]*)>, )?"(?P<path>[^"]*)"'
    r"(?:, (?P<flags>[A-Z_|]+))?"
)
_WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"}


@dataclass(frozen=True)
class Trace:
    """What the service and its children tried: network peers and files opened to write."""

    peers: set[str]
    written: set[Path]


def _read_trace(path: Path, cwd: Path) -> Trace:
    peers, written = set(), set()
    for line in path.read_text(errors="replace").splitlines():
        for match in _ADDRESS.finditer(line):
            family, fields = match["family"], match["fields"]
            if family in {"INET", "INET6"} and (inet := _INET.search(fields)):
                peers.add(f"{inet['host']}:{inet['port']}")
            elif family == "UNIX" and (unix := _UNIX.search(fields)):
                peers.add(f"unix:{unix['path']}")
            elif family not in {"NETLINK", "UNSPEC"}:  # the kernel itself; "disconnect"
                peers.add(f"{family}:{fields}")
        opened = _OPEN.match(line)
        if opened is None:
            continue
        flags = set((opened["flags"] or "").split("|"))
        if opened["call"] == "creat" or flags & _WRITE_FLAGS:
            base = Path(opened["dir"]) if opened["dir"] else cwd
            written.add(base / opened["path"])
    return Trace(peers, written)


def _outside(paths: set[Path], allowed: list[Path]) -> set[Path]:
    def inside(path: Path) -> bool:
        resolved = Path(os.path.normpath(path))
        return any(resolved == root or root in resolved.parents for root in allowed)

    return {path for path in paths if not inside(path)}


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _config(
    tmp_path: Path,
    models_dir: Path,
    vlm: OpenAIServer,
    broker: BrokerAddress,
    topic_prefix: str,
) -> dict[str, Any]:
    """Detector, VLM, local storage, SQLite state (in a folder of its own), MQTT, HTTP API."""
    return config_dict(
        tmp_path,
        state_store={
            "dsn_env": "HOMESEC_TEST_NO_DSN",
            "sqlite_path": str(tmp_path / "state" / "homesec.db"),
        },
        filter={"backend": "yolo", "config": {"model": str(models_dir / "yolox_nano.onnx")}},
        vlm={
            "backend": "openai",
            "run_mode": "trigger_only",
            "config": {"base_url": vlm.base_url, "model": "local-vlm"},
            "preprocessing": {"max_frames": 2, "max_size": 256},
        },
        notifiers=[
            {
                "backend": "mqtt",
                "config": {
                    "host": broker.host,
                    "port": broker.port,
                    "topic_template": topic_prefix + "/{camera_name}",
                },
            }
        ],
        server={"enabled": True, "host": "127.0.0.1", "port": free_port()},
    )


def _traced_homesec(tmp_path: Path, config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`homesec run` under strace, which writes what it sees to `strace.txt`."""
    homesec_run = [str(Path(sys.executable).with_name("homesec")), "run", "--config", str(config)]
    return subprocess.Popen(
        [STRACE, *_STRACE_OPTIONS, "-o", str(tmp_path / "strace.txt"), *homesec_run],
        cwd=tmp_path / "cwd",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "homesec.log").open("ab"),
    )


async def test_a_clip_end_to_end_reaches_only_configured_endpoints_and_folders(
    tmp_path: Path,
    person_clip: Path,
    models_dir: Path,
    openai_server: OpenAIServer,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given `homesec run` under strace, in a home, a temp and a working folder of its own
    assert Path(STRACE).is_file(), "strace is missing: run scripts/bootstrap.sh --test"
    openai_server.default_reply = ScriptedReply.analysis(risk_level="high")
    home, temp, cwd = tmp_path / "home", tmp_path / "tmp", tmp_path / "cwd"
    for folder in (home, temp, cwd):
        folder.mkdir()
    raw = _config(tmp_path, models_dir, openai_server, mqtt_broker, mqtt_topic_prefix)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    # And every telemetry switch HomeSec sets turned on in its environment: it must win
    opted_in = {
        "ORT_DISABLE_TELEMETRY": "0",
        "OTEL_SDK_DISABLED": "false",
        "AWS_CSM_ENABLED": "true",
        "DO_NOT_TRACK": "0",
    }
    env = {**os.environ, **opted_in, "HOME": str(home), "TMPDIR": str(temp)}
    watch_dir = Path(raw["cameras"][0]["source"]["config"]["watch_dir"])
    strace = _traced_homesec(tmp_path, config_path, env)
    try:
        async with MQTTSubscriber(mqtt_broker, mqtt_topic_prefix + "/#") as subscriber:
            # When a clip goes through the whole pipeline: detector, VLM, storage, alert
            drop_clip(person_clip, watch_dir, CLIP_ID)
            message = await subscriber.next(timeout=60)
    finally:
        # And the service stops
        for pid in _children(strace.pid):
            os.kill(pid, signal.SIGTERM)
        exit_code = await asyncio.to_thread(strace.wait, 60)
    assert Alert.model_validate_json(message.payload).clip_id == CLIP_ID
    assert exit_code == 0, (tmp_path / "homesec.log").read_text()
    trace = _read_trace(tmp_path / "strace.txt", cwd)

    # Then it tried to reach the VLM server and the broker, nothing else: no DNS, no
    # telemetry host, no local socket
    assert trace.peers == {
        f"127.0.0.1:{openai_server.port}",
        f"{mqtt_broker.host}:{mqtt_broker.port}",
    }
    # And it wrote only to its configured folders, its own temp folder, HomeSec's cache,
    # devices, and where Python keeps compiled modules
    configured = [
        Path(raw["pipeline"]["work_dir"]),
        Path(raw["storage"]["config"]["root"]),
        tmp_path / "state",
        watch_dir,
        models_dir,
    ]
    runtime = [temp, home / ".cache" / "homesec", Path("/dev"), Path("/proc")]
    python = [Path(sys.prefix), Path(sys.base_prefix), Path(homesec.__file__).parent]
    assert _outside(trace.written, configured + runtime + python) == set()
