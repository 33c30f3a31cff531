"""More than one VLM: a clip goes to the first configured; one that fails, or takes longer than
its `timeout_s` (its own retries included), hands the clip to the next. Each one's calls,
failures, time, tokens and estimated cost are counted (Prometheus, and `stats()` for the
system page). When every one failed, the error says why each did; the stage's own retries
then ask the first again, later."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from homesec import metrics
from homesec.errors import CausedError, RetriesSpent
from homesec.interfaces import AnalysisContext, TextWriter, VLMAnalyzer
from homesec.models.results import AnalysisResult, FilterResult

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ProviderStats(BaseModel):
    """One VLM's work since HomeSec started."""

    name: str
    calls: int = 0
    failures: int = 0
    seconds: float = Field(default=0.0, description="Time spent in its calls, in all")
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0


@dataclass(frozen=True)
class Provider:
    name: str
    analyzer: VLMAnalyzer
    timeout_s: float | None = None


class AllProvidersFailed(RetriesSpent):
    """Every VLM failed on the clip (each one's retries spent)."""


class VLMProviders:
    """The configured VLMs as one analyzer, tried in order."""

    def __init__(self, providers: list[Provider]) -> None:
        if not providers:
            raise ValueError("VLMProviders needs at least one VLM")
        self._providers = providers
        self._stats = {p.name: ProviderStats(name=p.name) for p in providers}

    def stats(self) -> list[ProviderStats]:
        return [stats.model_copy() for stats in self._stats.values()]

    def writes_text(self) -> bool:
        return any(isinstance(p.analyzer, TextWriter) for p in self._providers)

    async def start(self) -> None:
        for provider in self._providers:
            await provider.analyzer.start()

    async def aclose(self) -> None:
        for provider in self._providers:
            try:
                await provider.analyzer.aclose()
            except Exception as exc:
                logger.warning("VLM %s did not close cleanly: %s", provider.name, exc)

    async def analyze(
        self, video_path: Path, filter_result: FilterResult, context: AnalysisContext
    ) -> AnalysisResult:
        def call(provider: Provider) -> Awaitable[AnalysisResult]:
            return provider.analyzer.analyze(video_path, filter_result, context)

        name, result = await self._first_answer(self._providers, call, context.clip_id)
        self._count_usage(name, result)
        return result.model_copy(update={"provider": name})

    async def write(self, instructions: str, material: str) -> str:
        """The digest's text, from the first VLM that writes text and answers."""
        writers = [p for p in self._providers if isinstance(p.analyzer, TextWriter)]

        def call(provider: Provider) -> Awaitable[str]:
            analyzer = provider.analyzer
            assert isinstance(analyzer, TextWriter)
            return analyzer.write(instructions, material)

        return (await self._first_answer(writers, call, "the digest"))[1]

    async def _first_answer(
        self, providers: list[Provider], call: Callable[[Provider], Awaitable[T]], what: str
    ) -> tuple[str, T]:
        failures: list[str] = []
        last: BaseException | None = None
        for index, provider in enumerate(providers):
            stats = self._stats[provider.name]
            started = time.perf_counter()
            try:
                async with asyncio.timeout(provider.timeout_s):
                    answer = await call(provider)
            except Exception as exc:
                elapsed = time.perf_counter() - started
                reason = _reason(exc, provider.timeout_s)
                stats.calls, stats.failures = stats.calls + 1, stats.failures + 1
                stats.seconds += elapsed
                metrics.vlm_provider_called(provider.name, elapsed, ok=False)
                after = providers[index + 1].name if index + 1 < len(providers) else None
                logger.warning(
                    "VLM %s failed on %s (%s); %s",
                    provider.name,
                    what,
                    reason,
                    f"asking {after}" if after else "no VLM left to ask",
                )
                failures.append(f"{provider.name}: {reason}")
                last = exc
                continue
            elapsed = time.perf_counter() - started
            stats.calls += 1
            stats.seconds += elapsed
            metrics.vlm_provider_called(provider.name, elapsed, ok=True)
            return provider.name, answer
        raise AllProvidersFailed(
            "every VLM failed: " + "; ".join(failures), last, summary="every VLM failed"
        )

    def _count_usage(self, name: str, result: AnalysisResult) -> None:
        usage = result.usage
        if usage is None:
            return
        stats = self._stats[name]
        stats.input_tokens += usage.input_tokens
        stats.output_tokens += usage.output_tokens
        stats.estimated_cost_usd += usage.estimated_cost_usd or 0.0
        metrics.vlm_provider_usage(
            name, usage.input_tokens, usage.output_tokens, usage.estimated_cost_usd or 0.0
        )


def _reason(exc: BaseException, timeout_s: float | None) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout_s:g} s" if timeout_s else "timed out"
    if isinstance(exc, CausedError) and exc.summary:
        return exc.summary
    return str(exc) or type(exc).__name__
