"""A real local HTTP server speaking OpenAI's chat-completions protocol, scriptable per test.

- `openai_server` (function scope): an `OpenAIServer` on a free loopback port, served by
  uvicorn in a background thread. `base_url` is `http://127.0.0.1:PORT/v1`; any path ending
  in `/chat/completions` is served, so Azure-style deployment URLs work too (`root_url`).
- Replies: `enqueue(...)` queues `ScriptedReply` objects (a completion with some content, a
  valid analysis, an OpenAI-style error with an optional `Retry-After`, each with an
  optional delay); when the queue is empty the server answers `default_reply` (a valid
  analysis unless changed), so end-to-end tests can use it as an always-on VLM.
- `format_support`: which `response_format` types the "model" accepts; others get the 400
  that OpenAI gives for an unsupported response_format (the request is still recorded).
- `api_key`: when set, requests without it (as a Bearer token or `api-key` header) get 401.
- `models`: the model ids listed by `GET {base_url}/models` (OpenAI's list format).
- `requests`: every request received, with headers and JSON body, for assertions.
- `serve_openai()`: the same server as a context manager, for benchmarks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

VALID_ANALYSIS: dict[str, Any] = {
    "risk_level": "low",
    "activity_type": "delivery",
    "summary": "A courier leaves a parcel at the front door and walks away.",
    "entities_timeline": [
        {"time_s": 1.0, "entity": "person", "action": "walks to the door"},
        {"time_s": 3.5, "entity": "person", "action": "puts a parcel down"},
    ],
    "requires_review": False,
    "confidence": 0.9,
    "known_entities": [],
    "only_known": False,
}
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


class FormatSupport(StrEnum):
    """The `response_format` types the served model accepts."""

    JSON_SCHEMA = "json_schema"
    """json_schema, json_object and text: a current OpenAI model."""
    JSON_OBJECT = "json_object"
    """json_object and text: an older model or server."""
    TEXT = "text"
    """Text only: a server without structured output."""


_ACCEPTED: dict[FormatSupport, frozenset[str | None]] = {
    FormatSupport.JSON_SCHEMA: frozenset({None, "text", "json_object", "json_schema"}),
    FormatSupport.JSON_OBJECT: frozenset({None, "text", "json_object"}),
    FormatSupport.TEXT: frozenset({None, "text"}),
}


@dataclass(frozen=True)
class ScriptedReply:
    """One answer: a completion whose message is `content`, or a raw `body` with `status`."""

    status: int = 200
    content: str | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    prompt_tokens: int = 1200
    completion_tokens: int = 150
    finish_reason: str = "stop"

    @classmethod
    def completion(cls, content: str, **options: Any) -> ScriptedReply:
        """A 200 chat completion whose assistant message is `content`."""
        return cls(content=content, **options)

    @classmethod
    def analysis(cls, delay_s: float = 0.0, **fields: Any) -> ScriptedReply:
        """A completion holding `VALID_ANALYSIS` as bare JSON, with `fields` changed."""
        return cls(content=json.dumps({**VALID_ANALYSIS, **fields}), delay_s=delay_s)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "The server had an error while processing your request.",
        *,
        error_type: str = "server_error",
        param: str | None = None,
        retry_after: str | None = None,
        delay_s: float = 0.0,
    ) -> ScriptedReply:
        """An OpenAI-style error answer."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"error": {"message": message, "type": error_type, "param": param, "code": None}}
        return cls(status=status, body=body, headers=headers, delay_s=delay_s)


@dataclass(frozen=True)
class CapturedRequest:
    """One request as the server received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lowercase names."""
    body: Any
    received_at: float
    """`time.monotonic()` when it arrived."""

    @property
    def response_format_type(self) -> str | None:
        match self.body:
            case {"response_format": {"type": str(kind)}}:
                return kind
        return None

    def user_parts(self) -> list[dict[str, Any]]:
        """The content parts of every user message, in order."""
        parts: list[dict[str, Any]] = []
        for message in self.body.get("messages", []):
            if message.get("role") == "user" and isinstance(message.get("content"), list):
                parts += message["content"]
        return parts

    @property
    def image_urls(self) -> list[str]:
        return [p["image_url"]["url"] for p in self.user_parts() if p.get("type") == "image_url"]

    @property
    def text(self) -> str:
        """Every text of the conversation, joined: what the model was told."""
        texts = []
        for message in self.body.get("messages", []):
            match message.get("content"):
                case str(content):
                    texts.append(content)
                case list(parts):
                    texts += [p["text"] for p in parts if p.get("type") == "text"]
        return "\n".join(texts)


class OpenAIServer:
    """An OpenAI-compatible chat-completions server on a free loopback port."""

    def __init__(self) -> None:
        self.format_support = FormatSupport.JSON_SCHEMA
        self.default_reply = ScriptedReply.analysis()
        self.api_key: str | None = None
        self.models: list[str] = ["test-model"]
        self._queue: deque[ScriptedReply] = deque()
        self._requests: list[CapturedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/{prefix:path}/chat/completions", self._chat, methods=["POST"]),
                Route("/{prefix:path}/models", self._models, methods=["GET"]),
            ]
        )
        # log_config=None: uvicorn must not reconfigure logging under pytest's caplog.
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[CapturedRequest]:
        with self._lock:
            return list(self._requests)

    def enqueue(self, *replies: ScriptedReply) -> None:
        """Answer the next requests with these, in order, then `default_reply` again."""
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the OpenAI test server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._stopping.set()  # cuts scripted delays short
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT_S)
        self._socket.close()

    async def _chat(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = None
        captured = CapturedRequest(
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(captured)
        if not isinstance(body, dict):
            return _error(400, "We could not parse the JSON body of your request.")
        if self.api_key is not None and not self._authorized(captured.headers):
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        if captured.response_format_type not in _ACCEPTED[self.format_support]:
            return _error(
                400,
                f"Invalid parameter: 'response_format' of type '{captured.response_format_type}'"
                " is not supported with this model.",
                "invalid_request_error",
                param="response_format",
            )
        reply = self._next_reply()
        await self._pause(reply.delay_s)
        return self._render(reply, body)

    async def _models(self, request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            self._requests.append(
                CapturedRequest(
                    path=request.url.path,
                    query=dict(request.query_params),
                    headers=headers,
                    body=None,
                    received_at=time.monotonic(),
                )
            )
        if self.api_key is not None and not self._authorized(headers):
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        listed = [
            {"id": model, "object": "model", "created": 1700000000, "owned_by": "homesec-tests"}
            for model in self.models
        ]
        return JSONResponse({"object": "list", "data": listed})

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_key}" or (
            headers.get("api-key") == self.api_key
        )

    def _next_reply(self) -> ScriptedReply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default_reply

    async def _pause(self, delay_s: float) -> None:
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline and not self._stopping.is_set():
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def _render(self, reply: ScriptedReply, request: dict[str, Any]) -> Response:
        if reply.content is None:
            return JSONResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))
        completion = {
            "id": f"chatcmpl-test{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content, "refusal": None},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
        return JSONResponse(completion, status_code=reply.status, headers=dict(reply.headers))


def _error(
    status: int, message: str, error_type: str = "server_error", param: str | None = None
) -> Response:
    reply = ScriptedReply.error(status, message, error_type=error_type, param=param)
    return JSONResponse(reply.body, status_code=status)


@contextmanager
def serve_openai() -> Iterator[OpenAIServer]:
    """A running `OpenAIServer`, stopped on exit."""
    server = OpenAIServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh OpenAI-compatible server per test; answers a valid analysis by default."""
    with serve_openai() as server:
        yield server
