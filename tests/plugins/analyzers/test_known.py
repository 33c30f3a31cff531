"""What the household knows, told to the VLM: the camera's context, and reference pictures
of known people, vehicles and pets that the analysis may name."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from homesec.interfaces import AnalysisContext
from homesec.models.known import KnownEntity, RecognisedEntity
from tests.plugins.analyzers.conftest import MakeAnalyzer, person_seen_at
from tests.services.openai_server import OpenAIServer, ScriptedReply

CONTEXT = "front door; the street in the top third is public"


def _picture(path: Path, width: int, height: int) -> Path:
    image = np.full((height, width, 3), (40, 120, 200), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return path


def _user_content(server: OpenAIServer) -> list[dict[str, object]]:
    [request] = server.requests
    [user] = [m for m in request.body["messages"] if m["role"] == "user"]
    content: list[dict[str, object]] = user["content"]
    return content


async def test_the_camera_context_and_the_reference_pictures_are_in_the_request(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    tmp_path: Path,
) -> None:
    # Given a camera with a context, and two known entities with large reference pictures
    alice = KnownEntity(
        name="Alice", image=_picture(tmp_path / "alice.jpg", 2000, 1500), description="our daughter"
    )
    van = KnownEntity(name="our van", image=_picture(tmp_path / "van.png", 800, 1600))
    told = context.model_copy(update={"camera_context": CONTEXT, "known": [alice, van]})

    # When a clip is analysed
    await make_analyzer().analyze(person_clip, person_seen_at(1.0), told)

    # Then the clip's description carries the context, and each reference comes labelled,
    # downscaled to 512 px, before the clip's frames
    content = _user_content(openai_server)
    texts = [part["text"] for part in content if part["type"] == "text"]
    assert f"About this camera: {CONTEXT}" in str(texts[0])
    assert "Reference picture of Alice: our daughter" in texts
    assert "Reference picture of our van" in texts
    first_frame = next(
        i for i, part in enumerate(content) if part.get("text") == "The clip's frames:"
    )
    references = [part for part in content[:first_frame] if part["type"] == "image_url"]
    assert len(references) == 2
    sizes = [_decoded_size(part) for part in references]
    assert sizes == [(512, 384), (256, 512)]


async def test_the_analysis_lists_the_known_entities_it_recognised_by_their_names(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    tmp_path: Path,
) -> None:
    # Given one known person, and a model that names her (in other case) and a stranger
    alice = KnownEntity(name="Alice", image=_picture(tmp_path / "alice.jpg", 300, 300))
    told = context.model_copy(update={"known": [alice]})
    openai_server.enqueue(
        ScriptedReply.analysis(summary="Alice arrives.", known_entities=["alice", "Mallory"])
    )

    # When the clip is analysed
    analysis = await make_analyzer().analyze(person_clip, person_seen_at(1.0), told)

    # Then only the configured name is kept, spelled as configured
    assert analysis.known_entities == [RecognisedEntity(name="Alice", label="person")]
    assert analysis.summary == "Alice arrives."


async def test_an_unreadable_reference_picture_is_left_out_and_the_clip_analysed(
    openai_server: OpenAIServer,
    make_analyzer: MakeAnalyzer,
    person_clip: Path,
    context: AnalysisContext,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a known entity whose "picture" is a text file
    fake = tmp_path / "bob.jpg"
    fake.write_text("not a picture")
    told = context.model_copy(update={"known": [KnownEntity(name="Bob", image=fake)]})

    # When the clip is analysed
    with caplog.at_level(logging.WARNING):
        analysis = await make_analyzer().analyze(person_clip, person_seen_at(1.0), told)

    # Then the analysis is there, without Bob's reference, and the log says why
    assert analysis.summary
    texts = [part.get("text") for part in _user_content(openai_server)]
    assert not any("Bob" in str(text) for text in texts)
    assert any("Reference picture of 'Bob' left out" in r.message for r in caplog.records)


def _decoded_size(part: dict[str, object]) -> tuple[int, int]:
    image_url = part["image_url"]
    assert isinstance(image_url, dict)
    data = base64.b64decode(str(image_url["url"]).split(",", 1)[1])
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    height, width = image.shape[:2]
    return width, height
