"""A small client for OpenAI-compatible chat completions (OpenAI, Azure, Ollama, vLLM...).

One POST to `{base_url}/chat/completions` per completion, retried with exponential backoff
and jitter on what is worth retrying: 408, 409, 429 and 5xx answers, timeouts and broken
connections. A `Retry-After` (or OpenAI's `retry-after-ms`) header replaces the computed wait,
up to `max_backoff_s`. Other answers are raised at once as `httpx.HTTPStatusError`; a 200 whose
body is not a chat completion raises `ChatProtocolError`. `list_models` asks
`{base_url}/models` once (no retries: `homesec doctor` wants the answer of the moment). The API
key lives only in the client's default headers: it is never part of a URL, a log line or an
error message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, Field, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 409, 429})


class ChatProtocolError(Exception):
    """The server answered 200 with something that is not a chat completion."""


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Model(BaseModel):
    id: str


class _ModelList(BaseModel):
    data: list[_Model]


class _Completion(BaseModel):
    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


@dataclass(frozen=True)
class ChatReply:
    """The first choice of a completion, with the token counts of the call."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    model: str | None
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class ChatEndpoint:
    """Where and how to call: the API key is passed in, never read from here."""

    base_url: str
    timeout_s: float
    max_retries: int
    backoff_s: float
    max_backoff_s: float
    api_version: str | None = None
    azure: bool = False


class ChatClient:
    """Sends chat-completion requests to one endpoint over a pooled HTTP connection."""

    def __init__(self, endpoint: ChatEndpoint, api_key: str | None) -> None:
        self._endpoint = endpoint
        self._api_key = api_key
        headers: dict[str, str] = {}
        if api_key is not None:
            headers = (
                {"api-key": api_key} if endpoint.azure else {"Authorization": f"Bearer {api_key}"}
            )
        params = {"api-version": endpoint.api_version} if endpoint.api_version else None
        self._http = httpx.AsyncClient(
            base_url=endpoint.base_url.rstrip("/") + "/",
            headers=headers,
            params=params,
            timeout=httpx.Timeout(endpoint.timeout_s),
        )
        self._backoff = wait_exponential_jitter(
            multiplier=endpoint.backoff_s,
            max=endpoint.max_backoff_s,
            jitter=endpoint.backoff_s / 2,
        )

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def complete(self, body: dict[str, Any]) -> ChatReply:
        """POST one completion request, retrying transient failures."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._endpoint.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post(body)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def list_models(self, timeout_s: float) -> list[str]:
        """The ids of the models the server offers (`GET {base_url}/models`)."""
        response = await self._http.get("models", timeout=timeout_s)
        response.raise_for_status()
        try:
            models = _ModelList.model_validate_json(response.content)
        except ValidationError as exc:
            raise ChatProtocolError("the server's 200 answer is not a list of models") from exc
        return [model.id for model in models.data]

    async def aclose(self) -> None:
        await self._http.aclose()

    def scrub(self, text: str) -> str:
        """`text` without the API key, for anything that quotes a server or an exception."""
        return text.replace(self._api_key, "***") if self._api_key else text

    async def _post(self, body: dict[str, Any]) -> ChatReply:
        response = await self._http.post("chat/completions", json=body)
        response.raise_for_status()
        try:
            completion = _Completion.model_validate_json(response.content)
        except ValidationError as exc:
            raise ChatProtocolError(
                f"the server's 200 answer is not a chat completion: {exc.error_count()} "
                f"problem(s), first: {exc.errors(include_url=False)[0]['msg']}"
            ) from exc
        choice = completion.choices[0]
        usage = completion.usage or _Usage()
        return ChatReply(
            content=choice.message.content,
            refusal=choice.message.refusal,
            finish_reason=choice.finish_reason,
            model=completion.model,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, httpx.HTTPStatusError):
            asked = retry_after_s(exc.response.headers)
            if asked is not None:
                return min(asked, self._endpoint.max_backoff_s)
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "VLM request failed (%s); retrying in %.2f s (attempt %d of %d)",
            self.scrub(describe_failure(exc)),
            wait,
            state.attempt_number + 1,
            self._endpoint.max_retries + 1,
        )


def retry_after_s(headers: httpx.Headers) -> float | None:
    """The wait a server asks for: `retry-after-ms`, or `Retry-After` in seconds or as a date."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def server_message(response: httpx.Response) -> str:
    """The error message in an OpenAI-style error body, or the start of the body."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    match error:
        case {"message": str(message)}:
            return message
        case str(message):
            return message
    return response.text[:300]


def describe_failure(exc: BaseException | None) -> str:
    match exc:
        case httpx.HTTPStatusError():
            return f"HTTP {exc.response.status_code}: {server_message(exc.response)}"
        case httpx.TimeoutException():
            return f"no answer in time ({type(exc).__name__})"
        case httpx.TransportError():
            return f"connection failed ({type(exc).__name__}: {exc})"
        case None:
            return "unknown"
        case _:
            return f"{type(exc).__name__}: {exc}"


def summarize_failure(exc: BaseException) -> str:
    """A few words for a person (no address, no server text): "HTTP 500", "no answer in time"."""
    match exc:
        case httpx.HTTPStatusError():
            return f"HTTP {exc.response.status_code}"
        case httpx.TimeoutException():
            return "no answer in time"
        case httpx.TransportError():
            return "cannot connect"
        case ChatProtocolError():
            return "not a chat completion"
        case _:
            return type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    match exc:
        case httpx.HTTPStatusError():
            status = exc.response.status_code
            return status in _RETRYABLE_STATUS or status >= 500
        case httpx.TimeoutException() | httpx.NetworkError() | httpx.RemoteProtocolError():
            return True
        case _:
            return False
