"""Helpers of the analyzer tests: a clip context, filter results, analyzers on the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from homesec.interfaces import AnalysisContext
from homesec.models.results import Detection, FilterResult
from homesec.plugins.analyzers.openai import OpenAIAnalyzer
from homesec.plugins.registry import load_analyzer
from tests.services.openai_server import OpenAIServer

MakeAnalyzer = Callable[..., OpenAIAnalyzer]

# Small frames and quick retries keep the tests fast; tests that check them override these.
FAST: dict[str, Any] = {
    "model": "gpt-test",
    "timeout_s": 5.0,
    "retry_backoff_s": 0.01,
    "max_backoff_s": 2.0,
    "preprocessing": {"max_frames": 2, "max_size": 256, "quality": 70},
}


def person_seen_at(*first_seen_s: float) -> FilterResult:
    detections = [
        Detection(class_name="person", confidence=0.91, first_seen_s=t, box=(800, 300, 1000, 900))
        for t in first_seen_s
    ]
    return FilterResult(
        detected_classes=["person"] if first_seen_s else [],
        confidence=0.91 if first_seen_s else 0.0,
        sampled_frames=40,
        model="yolox_nano",
        detections=detections,
    )


@pytest.fixture
def context() -> AnalysisContext:
    # 22:13 local time, whatever the host's time zone: the prompt shows local time of day.
    return AnalysisContext(
        clip_id="front_door_1700000000.mp4",
        camera_name="front_door",
        start_ts=datetime(2023, 11, 14, 22, 13, 20).astimezone(),
    )


@pytest.fixture
async def make_analyzer(openai_server: OpenAIServer) -> AsyncIterator[MakeAnalyzer]:
    """Builds analyzers through the registry, on the test server unless told otherwise."""
    made: list[OpenAIAnalyzer] = []

    def make(**config: Any) -> OpenAIAnalyzer:
        raw = {"base_url": openai_server.base_url, **FAST, **config}
        analyzer = load_analyzer("openai", raw)
        assert isinstance(analyzer, OpenAIAnalyzer)
        made.append(analyzer)
        return analyzer

    yield make
    for analyzer in made:
        await analyzer.aclose()
