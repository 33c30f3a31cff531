"""Real Postgres for tests: a fresh database per test, and private servers tests may stop.

`postgres_dsn` creates a uniquely named database on the machine's server (127.0.0.1:5432,
trust auth, started if it is down) and drops it afterwards. `throwaway_postgres` runs a
private server on a free port, for tests that stop and restart the database: the cluster is
initialized once per session and copied per test, which keeps each one well under a second.
`serve_throwaway_postgres()` is such a server outside pytest (the soak campaign).
`silent_server` is a port that accepts connections and never answers: a hung database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
_START_WAIT_S = 30.0


def _bin_dir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if not candidates:
        pytest.fail("Postgres binaries not found under /usr/lib/postgresql/*/bin")
    return candidates[-1]


def _as_postgres(*command: str | Path) -> list[str]:
    # initdb and pg_ctl refuse to run as root: drop to the postgres OS user when we are root.
    args = [str(part) for part in command]
    return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else args


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user=PG_USER, group=PG_USER)


def _accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_until_accepting(host: str, port: int) -> None:
    deadline = time.monotonic() + _START_WAIT_S
    while not _accepting(host, port):
        if time.monotonic() > deadline:
            pytest.fail(f"Postgres at {host}:{port} did not come up in {_START_WAIT_S:.0f} s")
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind((PG_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _psql(sql: str) -> None:
    command = [str(_bin_dir() / "psql"), "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER]
    subprocess.run([*command, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The machine's Postgres cluster, started when it is down; returns its host:port."""
    if not _accepting(PG_HOST, PG_PORT):
        version = sorted(path.name for path in Path("/etc/postgresql").iterdir())[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True
        )
        _wait_until_accepting(PG_HOST, PG_PORT)
    return f"{PG_HOST}:{PG_PORT}"


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for this test (dropped afterwards), as a postgresql:// DSN."""
    name = f"homesec_test_{uuid.uuid4().hex[:16]}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{postgres_server}/{name}"
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ThrowawayPostgres:
    """A private Postgres server in a temp dir that a test may stop and start at will."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self._data_dir = root / "data"
        self._ctl = _bin_dir() / "pg_ctl"

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@{PG_HOST}:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses={PG_HOST}"
        log = self.root / "server.log"
        command = _as_postgres(self._ctl, "-D", self._data_dir, "-o", options, "-l", log)
        subprocess.run([*command, "-w", "start"], check=True, capture_output=True)
        _wait_until_accepting(PG_HOST, self.port)

    def stop(self) -> None:
        command = _as_postgres(self._ctl, "-D", self._data_dir, "-m", "fast", "-w", "stop")
        subprocess.run(command, check=True, capture_output=True)

    def ensure_stopped(self) -> None:
        status = _as_postgres(self._ctl, "-D", self._data_dir, "status")
        if subprocess.run(status, capture_output=True).returncode == 0:
            self.stop()


def _private_dir(prefix: str) -> Path:
    # Not pytest's tmp_path: it lives under a root-only directory the postgres user cannot
    # enter. mkdtemp gives a fresh 0700 directory that we hand over to that user.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _give_to_postgres(path)
    return path


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[Path]:
    """One initdb per session; each throwaway server starts from a copy of it."""
    root = _private_dir("homesec-pg-template-")
    data_dir = root / "data"
    _initdb(data_dir)
    try:
        yield data_dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _initdb(data_dir: Path) -> None:
    initdb = _as_postgres(
        _bin_dir() / "initdb", "-D", data_dir, "-U", PG_USER, "-A", "trust", "-E", "UTF8"
    )
    subprocess.run([*initdb, "--no-sync", "--locale=C"], check=True, capture_output=True)
    with (data_dir / "postgresql.conf").open("a") as conf:
        # A test server: durability is not what is under test, speed is welcome.
        conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")


@pytest.fixture
def throwaway_postgres(_postgres_template: Path) -> Iterator[ThrowawayPostgres]:
    """A running private Postgres server on a free port; always stopped and deleted."""
    root = _private_dir("homesec-pg-")
    subprocess.run(["cp", "-a", str(_postgres_template), str(root / "data")], check=True)
    with _running(root) as server:
        yield server


@contextlib.contextmanager
def serve_throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A fresh private server outside pytest (benchmarks, the soak campaign); deleted after."""
    root = _private_dir("homesec-pg-")
    _initdb(root / "data")
    with _running(root) as server:
        yield server


@contextlib.contextmanager
def _running(root: Path) -> Iterator[ThrowawayPostgres]:
    """The server of the cluster in `root/data`, started; stopped and deleted afterwards."""
    server = ThrowawayPostgres(root, free_port())
    try:
        server.start()
        yield server
    finally:
        server.ensure_stopped()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers: a hung database."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
