"""moto's standalone S3 server on a free loopback port: a separate process speaking real HTTP.

- `s3_server` (session scope): the running `S3Server` (`endpoint_url`, `client()` for checks).
- `s3_bucket` (function scope): a fresh, empty bucket on it, with the env vars
  `S3_TEST_ACCESS_KEY_ID` / `S3_TEST_SECRET_ACCESS_KEY` set to credentials it accepts;
  `s3_storage_config(...)` is the matching `s3` plugin config.
- `serve_s3()`: the same server as a context manager, for benchmarks.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY_ID, SECRET_ACCESS_KEY = "homesec-test-key", "homesec-test-secret"
KEY_ID_ENV, SECRET_ENV = "S3_TEST_ACCESS_KEY_ID", "S3_TEST_SECRET_ACCESS_KEY"
REGION = "us-east-1"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self) -> Any:
        """A plain boto3 client for the test's own checks (not the plugin under test)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self) -> str:
        name = f"homesec-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def s3_storage_config(server: S3Server, bucket: str, **overrides: Any) -> dict[str, Any]:
    """An `s3` storage plugin config for a bucket on the test server."""
    return {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "region": REGION,
        "addressing_style": "path",
        "access_key_id_env": KEY_ID_ENV,
        "secret_access_key_env": SECRET_ENV,
        **overrides,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=0.2),
    ):
        return True
    return False


@contextlib.contextmanager
def serve_s3() -> Iterator[S3Server]:
    """Run `python -m moto.server` on a free port until the block ends."""
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    # The server logs every request: a file, not a pipe, so it can never block on a full pipe.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + _START_TIMEOUT_S
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"moto server did not start: {log.read()[-2000:]!r}")
                time.sleep(0.05)
            yield S3Server(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with serve_s3() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ID_ENV, ACCESS_KEY_ID)
    monkeypatch.setenv(SECRET_ENV, SECRET_ACCESS_KEY)
    return s3_server.create_bucket()
