"""Chat completions through the official `openai` SDK (OpenAI, Azure OpenAI, Ollama, vLLM...).

The SDK sends the request and retries what is worth retrying (408, 409, 429 and 5xx answers,
timeouts, lost connections), honouring `Retry-After`; here its waits are the config's:
`retry_backoff_s`, doubling and jittered, and never more than `max_backoff_s`, a server's
`Retry-After` included. A 200 whose body is not a chat completion raises `ChatProtocolError`.

Only the configured key goes out, and only to `base_url`: the SDK would otherwise fill a
missing key, organization or project from `OPENAI_*` environment variables. `list_models`
asks `{base_url}/models` once (no retries: `homesec doctor` wants the answer of the moment).
`describe_failure` and `summarize_failure` put the SDK's errors in our words: a log line with
the server's reason, and a few words for alerts ("HTTP 500", "no answer in time").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncAzureOpenAI,
    AsyncOpenAI,
    Omit,
    omit,
)
from pydantic import BaseModel, Field, ValidationError
from tenacity.wait import wait_base

from homesec.backoff import Jitter, exponential_wait, wait_after

if TYPE_CHECKING:
    import httpx2

    from homesec.plugins.analyzers.openai import OpenAIAnalyzerConfig


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


class ChatReply(BaseModel):
    """A completion, as far as we read it: lenient servers leave out fields the SDK's type
    requires. Its first choice is the answer; `usage` counts the tokens of the call."""

    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None

    @property
    def message(self) -> _Message:
        return self.choices[0].message


class ChatClient:
    """Sends chat-completion requests to one endpoint over the SDK's pooled connection."""

    def __init__(self, config: OpenAIAnalyzerConfig) -> None:
        api_key = config.api_key_env.value.get_secret_value() if config.api_key_env else None
        self._api_key = api_key
        options: dict[str, Any] = {
            "base_url": config.base_url,
            "timeout": config.timeout_s,
            "max_retries": config.max_retries,
        }
        if config.azure:
            self._sdk: _PacedOpenAI = _PacedAzureOpenAI(
                api_key=api_key, api_version=config.api_version, **options
            )
        else:
            self._sdk = _PacedOpenAI(
                # Without a key no Authorization header is sent (see below), but the SDK must
                # be given one, or it reads OPENAI_API_KEY.
                api_key=api_key or "no-key",
                default_query={"api-version": config.api_version} if config.api_version else None,
                **options,
            )
        self._sdk.max_backoff_s = config.max_backoff_s
        self._sdk.waits = exponential_wait(
            config.retry_backoff_s, config.max_backoff_s, Jitter.ADDED
        )
        # Left out of every request (the SDK leaves headers out only per request): nothing from
        # OPENAI_ORG_ID or OPENAI_PROJECT_ID, and without a key no Authorization at all.
        self._left_out: dict[str, str | Omit] = {
            "OpenAI-Organization": omit,
            "OpenAI-Project": omit,
        }
        if api_key is None:
            self._left_out["Authorization"] = omit

    @property
    def closed(self) -> bool:
        return self._sdk.is_closed()

    async def complete(self, body: dict[str, Any]) -> ChatReply:
        """POST one completion request; the SDK retries transient failures."""
        raw = await self._sdk.chat.completions.with_raw_response.create(
            **body, extra_headers=self._left_out
        )
        try:
            return ChatReply.model_validate_json(raw.content)
        except ValidationError as exc:
            raise ChatProtocolError(
                f"the server's 200 answer is not a chat completion: {exc.error_count()} "
                f"problem(s), first: {exc.errors(include_url=False)[0]['msg']}"
            ) from exc

    async def list_models(self, timeout_s: float) -> list[str]:
        """The ids of the models the server offers (`GET {base_url}/models`), asked once."""
        once = self._sdk.with_options(max_retries=0, timeout=timeout_s)
        raw = await once.models.with_raw_response.list(extra_headers=self._left_out)
        try:
            models = _ModelList.model_validate_json(raw.content)
        except ValidationError as exc:
            raise ChatProtocolError("the server's 200 answer is not a list of models") from exc
        return [model.id for model in models.data]

    async def aclose(self) -> None:
        await self._sdk.close()

    def scrub(self, text: str) -> str:
        """`text` without the API key, for anything that quotes a server or an exception."""
        return text.replace(self._api_key, "***") if self._api_key else text


class _PacedOpenAI(AsyncOpenAI):
    """The SDK's client, waiting between retries as configured (its own waits are fixed)."""

    # Set by ChatClient right after construction.
    max_backoff_s: float
    waits: wait_base

    def _calculate_retry_timeout(
        self,
        remaining_retries: int,
        options: object,
        response_headers: httpx2.Headers | None = None,
    ) -> float:
        # The SDK's one hook for the wait before a retry (it does not retry at all when a
        # server asks for more than 2 minutes). Requests never change max_retries.
        asked_s = self._parse_retry_after_header(response_headers)
        if asked_s is not None and asked_s > 0:
            return min(asked_s, self.max_backoff_s)
        return wait_after(self.waits, self.max_retries - remaining_retries + 1)


class _PacedAzureOpenAI(AsyncAzureOpenAI, _PacedOpenAI):
    """The same on Azure OpenAI: `api-key` header, `api-version` query, deployment URLs."""


def describe_failure(exc: BaseException) -> str:
    """For the log and the stage journal: "HTTP 500: <the server's message>"."""
    match exc:
        case APIStatusError():
            return f"HTTP {exc.status_code}: {_server_message(exc)}"
        case APITimeoutError():
            return f"no answer in time ({_cause(exc)})"
        case APIConnectionError():
            return f"connection failed ({_cause(exc)}: {exc.__cause__ or exc})"
        case _:
            return f"{type(exc).__name__}: {exc}"


def summarize_failure(exc: BaseException) -> str:
    """A few words for a person (no address, no server text)."""
    match exc:
        case APIStatusError():
            return f"HTTP {exc.status_code}"
        case APITimeoutError():
            return "no answer in time"
        case APIConnectionError():
            return "cannot connect"
        case ChatProtocolError():
            return "not a chat completion"
        case _:
            return type(exc).__name__


def _server_message(exc: APIStatusError) -> str:
    """The message of an OpenAI-style error body (the SDK unwraps `error`), or the body's start."""
    match exc.body:
        case {"message": str(message)}:
            return message
        case str(message):
            return message[:300]
    return exc.response.text[:300]


def _cause(exc: APIConnectionError) -> str:
    """The transport's error under the SDK's (ReadTimeout, ConnectError...)."""
    return type(exc.__cause__ or exc).__name__
