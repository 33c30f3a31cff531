"""What the pipeline tells the VLM besides the pixels: the camera's context, known entities."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.builders import clip_from, config_dict
from tests.fakes.plugins import FakeVLM
from tests.pipeline.conftest import BuildPipeline


async def test_the_pipeline_tells_the_vlm_the_cameras_context_and_the_known_entities(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given a camera with a context and a household with one known person
    picture = tmp_path / "alice.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xd9")
    raw = config_dict(tmp_path)
    raw["cameras"][0]["context"] = "front door; the street is public"
    vlm = {**raw["vlm"], "known": [{"name": "Alice", "image": str(picture)}]}
    async with build_pipeline(cameras=raw["cameras"], vlm=vlm) as components:
        # When a clip of that camera is processed
        await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

    # Then the analyzer was given both
    analyzer = components.analyzer
    assert isinstance(analyzer, FakeVLM)
    [context] = analyzer.contexts
    assert context.camera_context == "front door; the street is public"
    assert [entity.name for entity in context.known] == ["Alice"]
