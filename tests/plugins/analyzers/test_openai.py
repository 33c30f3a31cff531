"""The `openai` analyzer against a real local OpenAI-compatible HTTP server."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from homesec.interfaces import AnalysisContext, VLMAnalyzer
from homesec.models.enums import EventType, PluginType, RiskLevel
from homesec.models.results import EntityEvent
from homesec.plugins.analyzers.openai import OpenAIAnalyzerError
from homesec.plugins.analyzers.reply import ResponseFormat
from homesec.plugins.registry import validate_plugin_config
from tests.plugins.analyzers.conftest import MakeAnalyzer, person_seen_at
from tests.services.openai_server import (
    VALID_ANALYSIS,
    FormatSupport,
    OpenAIServer,
    ScriptedReply,
)

API_KEY = "sk-test-0123456789abcdef-secret"
KEY_ENV = "HOMESEC_TEST_OPENAI_KEY"


def frame_times(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"Frame at ([\d.]+) s:", text)]


async def test_structured_reply_becomes_a_validated_analysis(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server that answers a valid analysis through structured output
    analyzer = make_analyzer()
    openai_server.enqueue(ScriptedReply.analysis(risk_level="medium", activity_type="loitering"))

    # When a clip with a person is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the reply is the analysis, with the model that answered
    assert isinstance(analyzer, VLMAnalyzer)
    assert analysis.risk_level is RiskLevel.MEDIUM
    assert analysis.activity_type == "loitering"
    assert analysis.summary == VALID_ANALYSIS["summary"]
    assert analysis.entities_timeline[0] == EntityEvent(
        time_s=1.0, entity="person", action="walks to the door"
    )
    assert analysis.requires_review is False
    assert analysis.confidence == 0.9
    assert analysis.model == "gpt-test"


async def test_request_names_the_model_and_asks_with_the_json_schema(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given an analyzer with its own activity types
    analyzer = make_analyzer(model="gpt-4o-mini", activity_types=["delivery", "break_in"])

    # When a clip is analysed
    await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then one request named the model and carried the strict schema of the reply
    [request] = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["max_tokens"] == 1024
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(VALID_ANALYSIS)
    assert schema["properties"]["activity_type"]["enum"] == ["delivery", "break_in", "unknown"]
    assert schema["properties"]["risk_level"]["enum"] == ["low", "medium", "high"]


async def test_frames_are_jpeg_data_urls_within_max_size_and_max_frames(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given frames limited to 4, 320 pixels on the longest side
    analyzer = make_analyzer(preprocessing={"max_frames": 4, "max_size": 320, "quality": 80})

    # When the 1080p clip is analysed
    await analyzer.analyze(person_clip, person_seen_at(2.0), context)

    # Then at most 4 images went out, each a JPEG data URL no larger than 320 pixels
    [request] = openai_server.requests
    assert 1 <= len(request.image_urls) <= 4
    for url in request.image_urls:
        prefix, payload = url.split(",", 1)
        assert prefix == "data:image/jpeg;base64"
        jpeg = base64.b64decode(payload)
        assert jpeg[:3] == b"\xff\xd8\xff"
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert max(image.shape[:2]) <= 320


async def test_frames_sent_are_weighted_toward_the_first_sighting(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given ten frames per clip and a person first seen 12 s into a 20 s clip
    analyzer = make_analyzer(preprocessing={"max_frames": 10, "max_size": 128, "quality": 60})

    # When the clip is analysed
    await analyzer.analyze(person_clip, person_seen_at(12.0), context)

    # Then half of the labelled frames sit around the sighting, the rest cover the clip
    [request] = openai_server.requests
    times = frame_times(request.text)
    assert len(times) == len(request.image_urls) == 10
    assert len([t for t in times if 11.0 <= t <= 16.0]) >= 5
    assert min(times) < 3.0
    assert max(times) > 17.0


async def test_server_with_json_mode_only_gets_json_mode_and_it_is_remembered(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server that rejects json_schema but accepts json_object
    openai_server.format_support = FormatSupport.JSON_OBJECT
    analyzer = make_analyzer()

    # When two clips are analysed
    first = await analyzer.analyze(person_clip, person_seen_at(1.0), context)
    second = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the first fell back to JSON mode and the second asked with JSON mode straight away
    assert first.activity_type == second.activity_type == "delivery"
    kinds = [request.response_format_type for request in openai_server.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert analyzer.response_format is ResponseFormat.JSON_OBJECT
    assert "json" in openai_server.requests[1].text.lower()


async def test_server_without_structured_output_gets_the_prompt_alone(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a text-only server whose model wraps its JSON in prose
    openai_server.format_support = FormatSupport.TEXT
    prose = f"Here is my analysis:\n{json.dumps(VALID_ANALYSIS)}\nLet me know if you need more."
    openai_server.enqueue(ScriptedReply.completion(prose))
    analyzer = make_analyzer()

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the analyzer stepped down to plain text and found the JSON in the prose
    kinds = [request.response_format_type for request in openai_server.requests]
    assert kinds == ["json_schema", "json_object", None]
    assert "response_format" not in openai_server.requests[-1].body
    assert analysis.summary == VALID_ANALYSIS["summary"]


async def test_chosen_response_format_is_not_abandoned_when_rejected(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given json_schema asked for explicitly, and a server that does not support it
    openai_server.format_support = FormatSupport.JSON_OBJECT
    analyzer = make_analyzer(response_format="json_schema")

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the server's refusal is the error, after a single request
    assert "HTTP 400" in str(caught.value)
    assert "response_format" in str(caught.value)
    assert len(openai_server.requests) == 1


async def test_reply_in_a_code_fence_is_extracted(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a model that answers in a ```json fence
    fenced = f"```json\n{json.dumps({**VALID_ANALYSIS, 'risk_level': 'high'})}\n```"
    openai_server.enqueue(ScriptedReply.completion(fenced))
    analyzer = make_analyzer()

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the fenced JSON is the analysis
    assert analysis.risk_level is RiskLevel.HIGH
    assert len(openai_server.requests) == 1


async def test_invalid_json_is_sent_back_once_with_the_error(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a model whose first reply is broken JSON and whose second is valid
    broken = '{"risk_level": "low", "activity_type": "delivery", "summary": '
    openai_server.enqueue(ScriptedReply.completion(broken), ScriptedReply.analysis())
    analyzer = make_analyzer()

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the second request carried the bad reply and what was wrong with it
    assert analysis.activity_type == "delivery"
    first, second = openai_server.requests
    messages = second.body["messages"]
    assert messages[: len(first.body["messages"])] == first.body["messages"]
    assert messages[-2] == {"role": "assistant", "content": broken}
    assert messages[-1]["role"] == "user"
    assert "not valid JSON" in messages[-1]["content"]
    assert len(second.image_urls) == len(first.image_urls)
    # Tokens of both calls are counted.
    assert analysis.usage is not None
    assert analysis.usage.input_tokens == 2 * 1200


async def test_invalid_reply_twice_raises_the_plugin_error(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a model that keeps answering an analysis with a made-up risk level
    openai_server.default_reply = ScriptedReply.analysis(risk_level="catastrophic")
    analyzer = make_analyzer()

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then it was asked exactly twice, and the error says what is wrong and keeps the cause
    assert len(openai_server.requests) == 2
    assert "did not validate, twice" in str(caught.value)
    assert "risk_level" in str(caught.value)
    assert isinstance(caught.value.cause, ValueError)
    assert "risk_level" in openai_server.requests[1].body["messages"][-1]["content"]


async def test_activity_type_outside_the_list_becomes_unknown(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a model that invents an activity type
    openai_server.enqueue(ScriptedReply.analysis(activity_type="window_shopping"))
    analyzer = make_analyzer()

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the activity is `unknown`, without asking again
    assert analysis.activity_type == "unknown"
    assert len(openai_server.requests) == 1


@pytest.mark.slow
async def test_429_then_success_waits_as_long_as_retry_after_asks(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a rate-limited server asking for a 1 s pause, and a 10 ms backoff of our own
    openai_server.enqueue(ScriptedReply.error(429, "Rate limit reached", retry_after="1"))
    analyzer = make_analyzer(retry_backoff_s=0.01)

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the retry came after the pause the server asked for, and succeeded
    first, second = openai_server.requests
    assert second.received_at - first.received_at >= 0.95
    assert analysis.activity_type == "delivery"


@pytest.mark.slow
async def test_retry_backoff_s_sets_the_wait_before_a_retry(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server failing once, without Retry-After, and a first wait of 0.6 s
    openai_server.enqueue(ScriptedReply.error(500))
    analyzer = make_analyzer(retry_backoff_s=0.6)

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the retry waited the configured time (jitter only adds to it), and succeeded
    first, second = openai_server.requests
    assert 0.6 <= second.received_at - first.received_at < 1.5
    assert analysis.activity_type == "delivery"


@pytest.mark.slow
async def test_retry_after_waits_no_longer_than_max_backoff_s(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a rate-limited server asking for 20 s, and waits capped at 0.3 s
    openai_server.enqueue(ScriptedReply.error(429, "Rate limit reached", retry_after="20"))
    analyzer = make_analyzer(max_backoff_s=0.3)

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the retry came after the cap, not after the server's 20 s
    first, second = openai_server.requests
    assert second.received_at - first.received_at < 2.0
    assert analysis.activity_type == "delivery"


@pytest.mark.slow
async def test_cancelled_analysis_is_not_retried(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server failing forever, and retries half a second apart
    openai_server.default_reply = ScriptedReply.error(500)
    analyzer = make_analyzer(max_retries=3, retry_backoff_s=0.5, max_backoff_s=0.5)
    task = asyncio.create_task(analyzer.analyze(person_clip, person_seen_at(1.0), context))
    async with asyncio.timeout(10):
        while not openai_server.requests:
            await asyncio.sleep(0.01)

    # When the analysis is cancelled while it waits to retry
    task.cancel()

    # Then it stops at once: cancelled, and no request follows
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.2)
    assert len(openai_server.requests) == 1


async def test_answer_that_is_not_a_chat_completion_raises(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server (or a proxy before it) answering 200 with something else
    openai_server.enqueue(ScriptedReply(body={"status": "ok", "choices": []}))
    analyzer = make_analyzer()

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the error says what came back, in few words for an alert, without asking again
    assert "not a chat completion" in str(caught.value)
    assert caught.value.summary == "not a chat completion"
    assert len(openai_server.requests) == 1


@pytest.mark.slow
async def test_slow_answer_times_out_and_is_retried(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server whose first answer takes longer than the timeout
    openai_server.enqueue(ScriptedReply.analysis(delay_s=2.0))
    analyzer = make_analyzer(timeout_s=0.3, max_retries=1)

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the request was sent again and the second answer is the analysis
    assert len(openai_server.requests) == 2
    assert analysis.activity_type == "delivery"


@pytest.mark.slow
async def test_timeout_on_every_attempt_raises(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server that never answers in time
    openai_server.default_reply = ScriptedReply.analysis(delay_s=2.0)
    analyzer = make_analyzer(timeout_s=0.2, max_retries=1)

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then it gave up after the retry, saying it got no answer in time
    assert len(openai_server.requests) == 2
    assert "no answer in time" in str(caught.value)
    assert caught.value.summary == "no answer in time"


async def test_500_forever_raises_after_max_retries(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server that always fails
    openai_server.default_reply = ScriptedReply.error(500, "The engine is currently overloaded")
    analyzer = make_analyzer(max_retries=3)

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then it tried once plus three retries, and the error carries the server's words
    assert len(openai_server.requests) == 4
    assert "HTTP 500: The engine is currently overloaded" in str(caught.value)
    assert caught.value.__cause__ is caught.value.cause
    # And an alert may quote its few words, without the server's text
    assert caught.value.summary == "HTTP 500"


async def test_client_error_is_not_retried(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a server that does not know the model
    openai_server.enqueue(
        ScriptedReply.error(404, "The model `gpt-nope` does not exist", error_type="not_found")
    )
    analyzer = make_analyzer(model="gpt-nope", max_retries=3)

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then it failed after one request, naming the model
    assert len(openai_server.requests) == 1
    assert "gpt-nope" in str(caught.value)


async def test_unreachable_server_raises_after_retries(
    make_analyzer: MakeAnalyzer, person_clip: Path, context: AnalysisContext
) -> None:
    # Given an endpoint where nothing listens
    analyzer = make_analyzer(base_url="http://127.0.0.1:9/v1", max_retries=1)

    # When a clip is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the error says the connection failed
    assert "connection failed" in str(caught.value)
    assert caught.value.summary == "cannot connect"


async def test_api_key_is_sent_as_bearer_token_and_never_logged(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a key in the environment, a server that checks it, and every logger at DEBUG
    monkeypatch.setenv(KEY_ENV, API_KEY)
    openai_server.api_key = API_KEY
    caplog.set_level(logging.DEBUG)
    analyzer = make_analyzer(api_key_env=KEY_ENV, max_retries=1)

    # When one clip is analysed and another fails on server errors
    await analyzer.analyze(person_clip, person_seen_at(1.0), context)
    openai_server.default_reply = ScriptedReply.error(503, "Service unavailable")
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then every request carried the key as a Bearer token
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in openai_server.requests)
    # And the key appears in no log record, extra or error message
    assert caplog.records
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.__dict__)
    assert API_KEY not in repr(caught.value)
    assert API_KEY not in repr(caught.value.cause)


async def test_without_api_key_env_nothing_from_the_environment_is_sent(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an OpenAI key, organization and project in the environment, and a local server
    # configured without api_key_env
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-home")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-home")
    analyzer = make_analyzer()

    # When a clip is analysed
    await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the request carried no credentials and no account names
    [request] = openai_server.requests
    assert "authorization" not in request.headers
    assert "openai-organization" not in request.headers
    assert "openai-project" not in request.headers
    assert API_KEY not in repr(request.headers)


async def test_azure_style_sends_api_key_header_and_api_version(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an Azure OpenAI deployment URL, key and API version
    monkeypatch.setenv(KEY_ENV, API_KEY)
    analyzer = make_analyzer(
        base_url=f"{openai_server.root_url}/openai/deployments/gpt-4o",
        api_key_env=KEY_ENV,
        azure=True,
        api_version="2024-10-21",
    )

    # When a clip is analysed
    await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the key went in an `api-key` header, the version in the query, no Bearer token
    [request] = openai_server.requests
    assert request.path == "/openai/deployments/gpt-4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == API_KEY
    assert "authorization" not in request.headers


@pytest.mark.slow
async def test_azure_retries_keep_the_key_header_and_the_configured_pace(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an Azure OpenAI deployment that fails once, and a first wait of 0.6 s
    monkeypatch.setenv(KEY_ENV, API_KEY)
    openai_server.enqueue(ScriptedReply.error(503, "Service unavailable"))
    analyzer = make_analyzer(
        base_url=f"{openai_server.root_url}/openai/deployments/gpt-4o",
        api_key_env=KEY_ENV,
        azure=True,
        api_version="2024-10-21",
        retry_backoff_s=0.6,
    )

    # When a clip is analysed
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the retry waited the configured time and went out like the first request
    first, second = openai_server.requests
    assert 0.6 <= second.received_at - first.received_at < 1.5
    for request in (first, second):
        assert request.headers["api-key"] == API_KEY
        assert request.query == {"api-version": "2024-10-21"}
    assert analysis.activity_type == "delivery"


async def test_prompt_tells_camera_time_of_day_and_detections(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a custom base prompt and a description for one custom activity type
    analyzer = make_analyzer(
        base_prompt="You watch over a farm gate.",
        activity_types=["delivery", "cattle_escape"],
        activity_descriptions={"cattle_escape": "cows walk out through the gate"},
    )

    # When a clip recorded at 22:13 with a person first seen at 2.5 s is analysed
    await analyzer.analyze(person_clip, person_seen_at(2.5), context)

    # Then the model is told the camera, the local time of day and what the filter saw
    [request] = openai_server.requests
    system, user = request.body["messages"]
    assert system["content"].startswith("You watch over a farm gate.")
    assert "- cattle_escape: cows walk out through the gate" in system["content"]
    assert "- unknown:" in system["content"]
    intro = user["content"][0]["text"]
    assert "Camera: front_door" in intro
    assert "22:13 local time (night)" in intro
    assert "person (first at 2.5 s, confidence 0.91)" in intro


async def test_usage_and_cost_are_returned_and_logged_as_vlm_usage(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given prices per million tokens
    analyzer = make_analyzer(input_cost_per_1m_tokens=2.5, output_cost_per_1m_tokens=10.0)
    caplog.set_level(logging.INFO, logger="homesec.plugins.analyzers")

    # When a clip is analysed (the server reports 1200 tokens in, 150 out)
    analysis = await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then the analysis carries usage and cost, and one vlm_usage event was logged
    assert analysis.usage is not None
    assert (analysis.usage.input_tokens, analysis.usage.output_tokens) == (1200, 150)
    assert analysis.usage.estimated_cost_usd == pytest.approx(0.0045)
    assert 0.0 < analysis.usage.latency_s < 5.0
    [event] = [r for r in caplog.records if getattr(r, "event_type", None) == EventType.VLM_USAGE]
    assert event.__dict__["camera_name"] == "front_door"
    assert event.__dict__["clip_id"] == "front_door_1700000000.mp4"
    assert event.__dict__["input_tokens"] == 1200
    assert event.__dict__["output_tokens"] == 150
    assert event.__dict__["latency_s"] == analysis.usage.latency_s
    assert event.__dict__["estimated_cost_usd"] == pytest.approx(0.0045)


async def test_unreadable_clip_raises_without_calling_the_model(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    tmp_path: Path,
    context: AnalysisContext,
) -> None:
    # Given a clip file that is not a video
    clip = tmp_path / "front_door_1700000000.mp4"
    clip.write_bytes(b"not a video at all" * 100)
    analyzer = make_analyzer()

    # When it is analysed
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(clip, person_seen_at(1.0), context)

    # Then the error says the frames could not be read, and no request was made
    assert "cannot read the clip's frames" in str(caught.value)
    assert openai_server.requests == []


async def test_empty_scene_without_detections_is_analysed(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    empty_scene_clip: Path,
    context: AnalysisContext,
) -> None:
    # Given a clip where the filter saw nothing (run_mode: always)
    analyzer = make_analyzer(preprocessing={"max_frames": 4, "max_size": 128, "quality": 60})

    # When it is analysed
    await analyzer.analyze(empty_scene_clip, person_seen_at(), context)

    # Then one frame comes from each quarter of the clip (near its middle, or the keyframe
    # within half a quarter of it) and the model is told nothing was detected
    [request] = openai_server.requests
    times = frame_times(request.text)
    assert len(times) == 4
    for quarter, time_s in enumerate(times):
        assert abs(time_s - (quarter * 5 + 2.5)) <= 2.5
    assert "saw none of its target objects" in request.text


async def test_shutdown_closes_the_client(
    make_analyzer: MakeAnalyzer, person_clip: Path, context: AnalysisContext
) -> None:
    # Given an analyzer that has been shut down
    analyzer = make_analyzer()
    await analyzer.aclose()

    # When it is asked to analyse a clip
    with pytest.raises(OpenAIAnalyzerError) as caught:
        await analyzer.analyze(person_clip, person_seen_at(1.0), context)

    # Then it refuses clearly
    assert "shut down" in str(caught.value)


def test_config_is_strict_and_completes_the_activity_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given configs with an unknown key, a description of an unlisted type, Azure without an
    # API version, and a custom list
    base = {"model": "gpt-4o"}
    monkeypatch.setenv(KEY_ENV, API_KEY)

    # When they are validated
    custom = validate_plugin_config(
        PluginType.ANALYZER, "openai", {**base, "activity_types": ["delivery"]}
    )

    # Then mistakes are refused and `unknown` is always a possible answer
    with pytest.raises(ValidationError, match="extra"):
        validate_plugin_config(PluginType.ANALYZER, "openai", {**base, "temprature": 0.1})
    with pytest.raises(ValidationError, match="unlisted activity types"):
        validate_plugin_config(
            PluginType.ANALYZER, "openai", {**base, "activity_descriptions": {"party": "x"}}
        )
    with pytest.raises(ValidationError, match="azure needs api_key_env"):
        validate_plugin_config(PluginType.ANALYZER, "openai", {**base, "azure": True})
    with pytest.raises(ValidationError, match="azure needs api_version"):
        validate_plugin_config(
            PluginType.ANALYZER, "openai", {**base, "azure": True, "api_key_env": KEY_ENV}
        )
    assert custom.model_dump()["activity_types"] == ["delivery", "unknown"]
    assert custom.model_dump()["preprocessing"] == {
        "max_frames": 10,
        "max_size": 1024,
        "quality": 85,
    }


def test_every_config_field_is_described() -> None:
    # Given the config's JSON schema
    schema = validate_plugin_config(
        PluginType.ANALYZER, "openai", {"model": "m"}
    ).model_json_schema()

    # When its fields are listed
    undescribed = [
        name for name, field in schema["properties"].items() if "description" not in field
    ]

    # Then each has a description for the config reference
    assert undescribed == []
