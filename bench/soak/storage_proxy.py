"""An HTTP proxy in front of the S3 server that can refuse or delay requests on demand."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_HOP_HEADERS = frozenset({"connection", "transfer-encoding", "keep-alive"})
_UNAVAILABLE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
    b"<Message>soak: storage failing</Message></Error>"
)
_START_TIMEOUT_S = 10.0


class ProxyMode(StrEnum):
    """How the proxy treats requests right now."""

    PASS = "pass"
    FAIL = "fail"
    SLOW = "slow"


class StorageProxy:
    """Forwards every request to `upstream`; FAIL answers 503, SLOW waits `slow_s` first."""

    def __init__(self, upstream: str, slow_s: float = 4.0) -> None:
        self.mode = ProxyMode.PASS
        self.slow_s = slow_s
        self.puts: Counter[str] = Counter()
        """Successful PUTs per path (a re-upload of one key shows as a count above 1)."""
        self.refused = 0
        self._upstream = upstream
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=methods)])
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._client: httpx.AsyncClient | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _forward(self, request: Request) -> Response:
        body = await request.body()  # read even when refusing: the connection stays in sync
        if self.mode == ProxyMode.FAIL:
            self.refused += 1
            return Response(_UNAVAILABLE, status_code=503, media_type="application/xml")
        if self.mode == ProxyMode.SLOW:
            await asyncio.sleep(self.slow_s)
        if self._client is None:  # created on the server's own loop
            self._client = httpx.AsyncClient(base_url=self._upstream, timeout=60.0)
        upstream = await self._client.request(
            request.method,
            request.url.path,
            params=httpx.QueryParams(request.url.query),
            headers=[(k, v) for k, v in request.headers.items() if k not in _HOP_HEADERS],
            content=body,
        )
        if request.method == "PUT" and upstream.status_code == 200:
            self.puts[request.url.path] += 1
        headers = {k: v for k, v in upstream.headers.items() if k not in _HOP_HEADERS}
        return Response(upstream.content, status_code=upstream.status_code, headers=headers)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the storage proxy did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5.0)
        self._socket.close()


@contextmanager
def serve_storage_proxy(upstream: str) -> Iterator[StorageProxy]:
    """A running `StorageProxy` in front of `upstream`, stopped on exit."""
    proxy = StorageProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
