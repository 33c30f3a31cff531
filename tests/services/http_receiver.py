"""Real HTTP peers for notifier tests: a receiver that records what is POSTed, and dead ones.

- `http_receiver`: an `HTTPReceiver` on a free loopback port (uvicorn in a background thread)
  that records every request (method, path, headers with lower-case names, raw body bytes) and
  answers `status` (200 unless changed) after `delay_s`, or 401 when `check` (a receiver's own
  verification, e.g. of a signature) returns False. `url(path)` builds a URL;
  `await receiver.wait_for(n)` returns the first n requests. `make_http_receiver()` builds more.
- `closed_port`: a loopback port nobody listens on (a sink that is down: connection refused).
- `silent_port`: a loopback port that accepts connections and never says a word (a hung sink).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HOST = "127.0.0.1"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HTTPReceiver:
    """Records every request; answers `status` after `delay_s`."""

    def __init__(self) -> None:
        self.status = 200
        self.delay_s = 0.0
        self.check: Callable[[ReceivedRequest], bool] | None = None
        self._requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socket = socket.create_server((HOST, 0))
        self.port: int = self._socket.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._record, methods=["GET", "POST"])])
        # log_config=None: uvicorn must not reconfigure logging under pytest's caplog.
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    async def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedRequest]:
        """The first `count` requests, or TimeoutError when they do not arrive in time."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                await asyncio.sleep(0.01)
        return self.requests[:count]

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HTTP receiver did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._stopping.set()  # cuts delays short
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT_S)
        self._socket.close()

    async def _record(self, request: Request) -> Response:
        received = ReceivedRequest(
            method=request.method,
            path=request.url.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.body(),
        )
        with self._lock:
            self._requests.append(received)
        deadline = time.monotonic() + self.delay_s
        while time.monotonic() < deadline and not self._stopping.is_set():
            await asyncio.sleep(0.01)
        if self.check is not None and not self.check(received):
            return Response(status_code=401)
        return Response(status_code=self.status)


@pytest.fixture
def make_http_receiver() -> Iterator[Callable[[], HTTPReceiver]]:
    """Builds started receivers (several sinks at once), stopped at teardown."""
    receivers: list[HTTPReceiver] = []

    def make() -> HTTPReceiver:
        receiver = HTTPReceiver()
        receivers.append(receiver)
        receiver.start()
        return receiver

    yield make
    for receiver in receivers:
        receiver.stop()


@pytest.fixture
def http_receiver(make_http_receiver: Callable[[], HTTPReceiver]) -> HTTPReceiver:
    """A started receiver that answers 200 and records every request."""
    return make_http_receiver()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server((HOST, 0), backlog=16) as listener:
        port: int = listener.getsockname()[1]
        yield port
