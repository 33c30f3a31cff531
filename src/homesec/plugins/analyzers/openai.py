"""`openai` analyzer: a clip's frames to any OpenAI-compatible chat-completions endpoint.

Works with OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio and llama.cpp's server. For each clip:
pick frames weighted toward where the object filter saw its target and encode them as JPEG
(in worker threads, off the event loop), ask the model for a structured analysis, validate
the reply with Pydantic, and log what it cost as a `vlm_usage` event.

Structured output is asked for as a JSON schema; in `auto` mode a server that rejects that
is asked with JSON mode, then with the prompt alone, and the first form it accepts is kept
for the next clips. A reply that does not validate is sent back once with the problem; a
second bad reply, a failed request (after the `openai` SDK's retries) or an unreadable clip
raise `OpenAIAnalyzerError`, which keeps its cause; the pipeline turns it into a `VLMError`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, Literal

from openai import APIConnectionError, APIError, APIStatusError
from pydantic import Field, field_validator, model_validator

from homesec.errors import CheckFailed, RetriesSpent
from homesec.interfaces import AnalysisContext, AnalyzerConfig, SelfCheck
from homesec.models.enums import PluginType
from homesec.models.env import SecretEnv
from homesec.models.known import KnownEntity
from homesec.models.results import AnalysisResult, FilterResult
from homesec.plugins.analyzers.chat import (
    ChatClient,
    ChatProtocolError,
    ChatReply,
    describe_failure,
    summarize_failure,
)
from homesec.plugins.analyzers.frames import EncodedFrame, extract_frames, plan_frames
from homesec.plugins.analyzers.prompt import (
    DEFAULT_ACTIVITY_DESCRIPTIONS,
    ImageDetail,
    Message,
    build_messages,
    correction_messages,
)
from homesec.plugins.analyzers.references import References
from homesec.plugins.analyzers.reply import (
    UNKNOWN_ACTIVITY,
    ReplyError,
    ResponseFormat,
    analysis_schema,
    parse_reply,
    response_format_param,
)
from homesec.plugins.analyzers.usage import UsageMeter
from homesec.plugins.registry import plugin
from homesec.video.clip import VideoReadError, probe_clip

logger = logging.getLogger(__name__)

_ACTIVITY_NAME = re.compile(r"^[a-z0-9_]+$")
# The next form to try when a server rejects one (auto mode only).
_FALLBACK = {
    ResponseFormat.JSON_SCHEMA: ResponseFormat.JSON_OBJECT,
    ResponseFormat.JSON_OBJECT: ResponseFormat.TEXT,
}
# Words by which an error answer points at the response_format field.
_FORMAT_REJECTION = ("response_format", "json_schema", "json_object")


class OpenAIAnalyzerConfig(AnalyzerConfig):
    """Config of the `openai` analyzer (global: the same for every camera)."""

    base_url: str = Field(
        default="https://api.openai.com/v1",
        description="API base, up to before /chat/completions: http://localhost:11434/v1 for "
        "Ollama, https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT for Azure "
        "(or https://RESOURCE.openai.azure.com/openai, the model naming the deployment)",
    )
    model: str = Field(min_length=1, description="Model name (on Azure, the deployment's)")
    api_key_env: SecretEnv | None = Field(
        default=None, description="Env var holding the API key; leave out for local servers"
    )
    azure: bool = Field(
        default=False,
        description="Azure OpenAI's deployment API: the key in an `api-key` header, not as a "
        "Bearer token (needs api_version; Azure's v1 API at .../openai/v1 takes azure: false)",
    )
    api_version: str | None = Field(
        default=None, description="Sent as the `api-version` query parameter (Azure OpenAI)"
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Longest wait for one answer")
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a request after 408/409/429/5xx, a timeout or a lost connection",
    )
    retry_backoff_s: float = Field(
        default=1.0, gt=0, description="Wait before the first retry; doubles each time, jittered"
    )
    max_backoff_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait between attempts, Retry-After included (a server asking for "
        "more than 2 minutes is not retried)",
    )
    activity_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ACTIVITY_DESCRIPTIONS),
        min_length=1,
        description="Names the model may give the activity (lowercase, underscores); `unknown` "
        "is always added and replaces any other answer",
    )
    activity_descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="What each activity type means, one line each, shown to the model; "
        "built-in lines exist for the default types",
    )
    base_prompt: str | None = Field(
        default=None,
        description="Instructions replacing the built-in ones; the reply format, the risk "
        "levels and the activity types are always appended",
    )
    max_tokens: int = Field(default=1024, ge=16, description="Most tokens the model may write")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens",
        description="Request field that carries max_tokens (OpenAI's reasoning models accept "
        "only max_completion_tokens)",
    )
    temperature: float | None = Field(
        default=0.2,
        ge=0.0,
        le=2.0,
        description="Sampling temperature; null leaves it out (models with a fixed one)",
    )
    response_format: ResponseFormat = Field(
        default=ResponseFormat.AUTO,
        description="How structured output is asked for: auto (json_schema, else json_object, "
        "else the prompt alone, as the server accepts), json_schema, json_object or text",
    )
    image_detail: ImageDetail = Field(
        default="auto", description="Image detail hint (OpenAI: low costs fewer tokens)"
    )
    input_cost_per_1m_tokens: float | None = Field(
        default=None, ge=0.0, description="USD per million input tokens, for the estimated cost"
    )
    output_cost_per_1m_tokens: float | None = Field(
        default=None, ge=0.0, description="USD per million output tokens, for the estimated cost"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
        return url.rstrip("/")

    @field_validator("activity_types")
    @classmethod
    def _activity_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _ACTIVITY_NAME.match(name):
                raise ValueError(f"activity type {name!r}: use lowercase letters, digits and _")
        return list(dict.fromkeys([*names, UNKNOWN_ACTIVITY]))

    @model_validator(mode="after")
    def _consistent(self) -> OpenAIAnalyzerConfig:
        strays = sorted(set(self.activity_descriptions) - set(self.activity_types))
        if strays:
            raise ValueError(f"activity_descriptions for unlisted activity types: {strays}")
        if self.azure and self.api_key_env is None:
            raise ValueError("azure needs api_key_env")
        if self.azure and self.api_version is None:
            raise ValueError("azure needs api_version (Azure's v1 API takes azure: false)")
        return self


class OpenAIAnalyzerError(RetriesSpent):
    """A clip could not be analysed; `cause` (also `__cause__`) says why.

    Raised after the HTTP retries and the corrected-reply retry, or for an unreadable clip:
    the pipeline does not try the stage again.
    """


@plugin(PluginType.ANALYZER, "openai", config=OpenAIAnalyzerConfig)
class OpenAIAnalyzer:
    """VLM analyzer over an OpenAI-compatible chat-completions API."""

    def __init__(self, config: OpenAIAnalyzerConfig) -> None:
        self._config = config
        self._client = ChatClient(config)
        self._format: ResponseFormat = (
            ResponseFormat.JSON_SCHEMA
            if config.response_format == ResponseFormat.AUTO
            else config.response_format
        )
        self._schema = analysis_schema(config.activity_types)
        self._references = References()

    @property
    def response_format(self) -> ResponseFormat:
        """The form of structured output in use (after any fallback)."""
        return self._format

    async def analyze(
        self, video_path: Path, filter_result: FilterResult, context: AnalysisContext
    ) -> AnalysisResult:
        if self._client.closed:
            raise OpenAIAnalyzerError("the analyzer has been shut down", summary="shut down")
        frames, duration_s = await self._frames(video_path, filter_result)
        config = self._config
        references = await self._references.of(context.known)
        messages = build_messages(config, context, filter_result, frames, duration_s, references)
        meter = UsageMeter(
            config.model, config.input_cost_per_1m_tokens, config.output_cost_per_1m_tokens
        )
        outcome = "error"
        try:
            analysis = await self._converse(messages, meter, context.known)
            outcome = "ok"
        except (APIError, ChatProtocolError) as exc:
            raise self._failed(exc) from exc
        finally:
            if meter.replies:
                meter.log(context, frames=len(frames), outcome=outcome)
        return analysis.model_copy(update={"model": meter.model, "usage": meter.usage()})

    async def write(self, instructions: str, material: str) -> str:
        """A text-only answer (the digest), with the analyzer's model, limits and retries."""
        if self._client.closed:
            raise OpenAIAnalyzerError("the analyzer has been shut down", summary="shut down")
        config = self._config
        body = {
            "model": config.model,
            "messages": [
                {"role": "system", "content": instructions},
                {"role": "user", "content": material},
            ],
            config.max_tokens_field: config.max_tokens,
        }
        try:
            reply = await self._client.complete(body)
        except (APIError, ChatProtocolError) as exc:
            raise self._failed(exc) from exc
        text = (reply.message.content or "").strip()
        if not text:
            raise OpenAIAnalyzerError(f"{self._where()}: an empty answer", summary="empty answer")
        return text

    async def start(self) -> None:
        """Nothing to start: the client connects on the first request."""

    async def aclose(self) -> None:
        await self._client.aclose()

    def self_checks(self) -> list[SelfCheck]:
        """The server answers with its list of models (with the key), and the configured
        model is in it. Azure lists no deployments under a deployment's URL: none there."""
        if self._config.azure:
            return []
        offered: list[str] = []

        async def reachable(timeout_s: float) -> str:
            offered[:] = await self._models(timeout_s)
            return f"{self._config.base_url} lists {len(offered)} model(s)"

        async def model_exists(timeout_s: float) -> str:
            model = self._config.model
            if model not in offered:
                some = ", ".join(sorted(offered)[:10]) or "none"
                raise CheckFailed(
                    f"the server does not offer the model {model!r} (it offers: {some}): "
                    "fix vlm.config.model, or install the model on the server (Ollama: "
                    f"`ollama pull {model}`)"
                )
            return f"{model} is offered"

        return [SelfCheck("reachable", reachable), SelfCheck("model exists", model_exists)]

    async def _models(self, timeout_s: float) -> list[str]:
        base_url = self._config.base_url
        try:
            return await self._client.list_models(timeout_s)
        except APIStatusError as exc:
            key_env = self._config.api_key_env
            match exc.status_code:
                case 401 | 403 if key_env:
                    fix = f"check the API key in ${key_env.name}"
                case 401 | 403:
                    fix = "the server wants an API key: set vlm.config.api_key_env"
                case 404:
                    fix = "is vlm.config.base_url the API base (for example ending in /v1)?"
                case _:
                    fix = "is the server healthy?"
            reason = self._client.scrub(describe_failure(exc))
            raise CheckFailed(f"{base_url}/models answered {reason}: {fix}", exc) from exc
        except APIConnectionError as exc:
            reason = self._client.scrub(describe_failure(exc))
            raise CheckFailed(
                f"cannot reach {base_url} ({reason}): is the server running? check "
                "vlm.config.base_url",
                exc,
            ) from exc
        except ChatProtocolError as exc:
            raise CheckFailed(
                f"{base_url}/models: {exc}: is vlm.config.base_url an OpenAI-compatible API?",
                exc,
            ) from exc

    async def _frames(
        self, video_path: Path, filter_result: FilterResult
    ) -> tuple[list[EncodedFrame], float | None]:
        preprocessing = self._config.preprocessing
        sightings = [detection.first_seen_s for detection in filter_result.detections]

        def read() -> tuple[list[EncodedFrame], float | None]:
            duration_s = probe_clip(video_path).duration_s
            runs = plan_frames(duration_s or 0.0, sightings, preprocessing.max_frames)
            frames = extract_frames(
                video_path, runs, max_size=preprocessing.max_size, quality=preprocessing.quality
            )
            return frames, duration_s

        try:
            return await asyncio.to_thread(read)
        except VideoReadError as exc:
            raise OpenAIAnalyzerError(
                f"cannot read the clip's frames: {exc}", cause=exc, summary="unreadable clip"
            ) from exc

    async def _converse(
        self, messages: list[Message], meter: UsageMeter, known: list[KnownEntity]
    ) -> AnalysisResult:
        reply = await self._ask(messages, meter)
        try:
            return self._parse(reply, known)
        except ReplyError as first:
            logger.warning("VLM reply did not validate (%s); asking once more", first)
            retry = [*messages, *correction_messages(reply.message.content, str(first))]
            reply = await self._ask(retry, meter)
            try:
                return self._parse(reply, known)
            except ReplyError as second:
                raise OpenAIAnalyzerError(
                    f"{self._where()}: the reply did not validate, twice: {second}",
                    cause=second,
                    summary="unreadable answer",
                ) from second

    async def _ask(self, messages: list[Message], meter: UsageMeter) -> ChatReply:
        while True:
            mode = self._format
            started = time.perf_counter()
            try:
                reply = await self._client.complete(self._body(messages, mode))
            except APIStatusError as exc:
                if not self._falls_back(mode, exc):
                    raise
                self._format = _FALLBACK[mode]
                logger.warning(
                    "%s rejects response_format %s; using %s from now on",
                    self._where(),
                    mode,
                    self._format,
                )
                continue
            finally:
                meter.model_s += time.perf_counter() - started
            meter.add(reply)
            return reply

    def _body(self, messages: list[Message], mode: ResponseFormat) -> dict[str, Any]:
        config = self._config
        body: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            config.max_tokens_field: config.max_tokens,
        }
        if config.temperature is not None:
            body["temperature"] = config.temperature
        response_format = response_format_param(mode, self._schema)
        if response_format is not None:
            body["response_format"] = response_format
        return body

    def _falls_back(self, mode: ResponseFormat, rejection: APIStatusError) -> bool:
        if self._config.response_format != ResponseFormat.AUTO or mode not in _FALLBACK:
            return False
        if rejection.status_code not in (400, 415, 422):
            return False
        text = rejection.response.text.lower()
        return any(word in text for word in _FORMAT_REJECTION)

    def _parse(self, reply: ChatReply, known: list[KnownEntity]) -> AnalysisResult:
        if reply.message.refusal and not reply.message.content:
            raise ReplyError(f"the model refused: {reply.message.refusal}")
        try:
            return parse_reply(reply.message.content, self._config.activity_types, known)
        except ReplyError as exc:
            if reply.choices[0].finish_reason == "length":
                raise ReplyError(f"{exc} (cut off at {self._config.max_tokens} tokens)") from exc
            raise

    def _failed(self, exc: APIError | ChatProtocolError) -> OpenAIAnalyzerError:
        return OpenAIAnalyzerError(
            self._client.scrub(f"{self._where()}: {describe_failure(exc)}"),
            cause=exc,
            summary=summarize_failure(exc),
        )

    def _where(self) -> str:
        return f"model {self._config.model} at {self._config.base_url}"
