"""Zones with the real detector on the shared media: only people in the required zones
trigger the VLM, the detection event and an alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homesec.models.enums import ClipStatus, StageStatus
from tests.fakes.builders import clip_from
from tests.fakes.plugins import FakeVLM, RecordingNotifier
from tests.pipeline.conftest import BuildPipeline, mqtt_sink
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber

# People walk on the right of the front door clip; nobody stands in the sky's corner.
ZONES = {
    "right": [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)],
    "sky": [(0.0, 0.0), (0.05, 0.0), (0.05, 0.05), (0.0, 0.05)],
}


def _sections(models_dir: Path, tmp_path: Path, required: str, sink: dict[str, Any]) -> Any:
    return {
        "cameras": [
            {
                "name": "front_door",
                "source": {
                    "backend": "local_folder",
                    "config": {"watch_dir": str(tmp_path / "in")},
                },
                "zones": ZONES,
            }
        ],
        "filter": {
            "backend": "yolo",
            "config": {"model": str(models_dir / "yolox_nano.onnx"), "classes": ["person"]},
        },
        "alert_policy": {
            "backend": "default",
            "config": {"min_risk_level": "medium", "required_zones": [required]},
        },
        "notifiers": [{"backend": "fake_recorder", "config": {}}, sink],
    }


async def test_a_person_in_the_required_zone_is_analysed_announced_and_alerted(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    models_dir: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given the front door's zones, with "right" required
    sink = mqtt_sink(mqtt_broker, mqtt_topic_prefix)
    sections = _sections(models_dir, tmp_path, "right", sink)
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/detections/#") as detections,
        build_pipeline(**sections) as components,
    ):
        # When the clip of people on the right is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the VLM looked, the detection event went out and the alert too
        await detections.next(timeout=10)
    assert isinstance(components.analyzer, FakeVLM) and len(components.analyzer.calls) == 1
    recorder = components.notifiers[0]
    assert isinstance(recorder, RecordingNotifier) and len(recorder.alerts) == 1
    assert state.filter_result is not None and state.filter_result.detections[0].zones == ["right"]


async def test_people_outside_the_required_zone_cost_nothing_and_alert_nobody(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    models_dir: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given the same camera with only the sky's corner required
    sink = mqtt_sink(mqtt_broker, mqtt_topic_prefix)
    sections = _sections(models_dir, tmp_path, "sky", sink)
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/detections/#") as detections,
        build_pipeline(**sections) as components,
    ):
        # When the same clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then no detection event, no VLM call and no alert; the clip is done, and its stored
        # result still has the person (in no zone)
        await detections.expect_silence(1.0)
    assert isinstance(components.analyzer, FakeVLM) and components.analyzer.calls == []
    recorder = components.notifiers[0]
    assert isinstance(recorder, RecordingNotifier) and recorder.alerts == []
    assert state.status == ClipStatus.DONE
    assert state.stage("vlm").status == StageStatus.SKIPPED
    assert state.alert_decision is not None
    assert state.alert_decision.notify_reason == "nothing detected in the required zones (sky)"
    assert state.filter_result is not None and state.filter_result.detected_classes == ["person"]
