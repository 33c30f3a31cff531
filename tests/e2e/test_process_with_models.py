"""`homesec process` with the real detector (YOLOX on ONNX Runtime) and an OpenAI-compatible
VLM server, alerting over the real broker."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from homesec.cli import app
from homesec.models.alert import Alert
from homesec.models.enums import ClipStatus, RiskLevel, StageName, StageStatus
from homesec.models.state import ClipStateData
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber
from tests.services.openai_server import OpenAIServer, ScriptedReply


def _config(
    tmp_path: Path, models_dir: Path, vlm_url: str, broker: BrokerAddress, prefix: str
) -> Path:
    raw: dict[str, Any] = {
        "cameras": [
            {"name": name, "source": {"backend": "local_folder", "config": {"watch_dir": "x"}}}
            for name in ("front_door", "backyard")
        ],
        "storage": {"backend": "local", "config": {"root": str(tmp_path / "storage")}},
        "state_store": {"dsn_env": "HOMESEC_TEST_NO_DSN", "sqlite_path": str(tmp_path / "s.db")},
        "filter": {
            "backend": "yolo",
            "config": {"model": str(models_dir / "yolox_nano.onnx"), "classes": ["person", "car"]},
        },
        "vlm": {
            "backend": "openai",
            "run_mode": "trigger_only",
            "config": {"base_url": vlm_url, "model": "local-vlm"},
            "preprocessing": {"max_frames": 4, "max_size": 512},
        },
        "alert_policy": {"backend": "default", "config": {"min_risk_level": "medium"}},
        "notifiers": [
            {
                "backend": "mqtt",
                "config": {
                    "host": broker.host,
                    "port": broker.port,
                    "topic_template": prefix + "/{camera_name}",
                },
            }
        ],
        "retry": {"max_attempts": 1},
        "server": {"enabled": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def _process(config: Path, *clips: Path) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, app, ["process", "--config", str(config), *map(str, clips)]
    )


def _states(result: Result) -> dict[str, ClipStateData]:
    states = [ClipStateData.model_validate_json(line) for line in result.stdout.splitlines()]
    return {state.clip_id: state for state in states}


async def test_people_clip_alerts_with_the_vlm_analysis_and_empty_scene_stays_quiet(
    tmp_path: Path,
    models_dir: Path,
    person_clip: Path,
    empty_scene_clip: Path,
    openai_server: OpenAIServer,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given the real detector, a VLM server that sees a high-risk loiterer, and the broker
    openai_server.default_reply = ScriptedReply.analysis(
        risk_level="high", activity_type="loitering", summary="Two people linger at the door."
    )
    config = _config(tmp_path, models_dir, openai_server.base_url, mqtt_broker, mqtt_topic_prefix)
    media_before = sorted(person_clip.parent.iterdir())
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        # When a clip with people and an empty-lawn clip are processed
        result = await _process(config, person_clip, empty_scene_clip)

        # Then one alert arrives, for the people, carrying the VLM's verdict
        assert result.exit_code == 0, result.output
        message = await subscriber.next(timeout=10)
        await subscriber.expect_silence(within=1.0)

    alert = Alert.model_validate_json(message.payload)
    assert alert.clip_id == person_clip.name
    assert (alert.risk_level, alert.activity_type) == (RiskLevel.HIGH, "loitering")
    assert alert.summary == "Two people linger at the door."
    assert alert.view_url is not None and not alert.upload_failed
    # And the input files' folder got nothing written next to them (snapshot, analysis)
    assert sorted(person_clip.parent.iterdir()) == media_before
    people_uri = _states(result)[person_clip.name].snapshot_uri
    assert people_uri is not None and people_uri.endswith(".snapshot.jpg")
    # And the detector's findings and the VLM call are on record
    states = _states(result)
    people = states[person_clip.name]
    assert people.filter_result is not None and "person" in people.filter_result.detected_classes
    assert people.filter_result.model.startswith("yolox_nano")
    empty = states[empty_scene_clip.name]
    assert empty.filter_result is not None and empty.filter_result.detected_classes == []
    assert empty.stages[StageName.VLM].status == StageStatus.SKIPPED
    assert empty.status == ClipStatus.DONE
    assert len(openai_server.requests) == 1


@pytest.mark.parametrize("content", [b"", b"\x00\x01junk" * 1000, b"RIFF....AVI LIST"])
async def test_corrupt_or_empty_clip_is_a_recorded_filter_error(
    tmp_path: Path,
    models_dir: Path,
    person_clip: Path,
    openai_server: OpenAIServer,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
    content: bytes,
) -> None:
    # Given a broken file next to a good clip
    broken = tmp_path / "front_door_1700000500.mp4"
    broken.write_bytes(content)
    good = tmp_path / "front_door_1700000501.mp4"
    shutil.copyfile(person_clip, good)
    config = _config(tmp_path, models_dir, openai_server.base_url, mqtt_broker, mqtt_topic_prefix)

    # When both are processed in one run
    result = await _process(config, broken, good)

    # Then the broken one ends as a filter error with a readable reason, the good one is done
    assert result.exit_code == 0, result.output
    states = _states(result)
    log = states[broken.name].stages[StageName.FILTER]
    assert log.status == StageStatus.ERROR and log.last_error
    assert "Traceback" not in log.last_error
    assert states[broken.name].stages[StageName.UPLOAD].status == StageStatus.OK
    assert states[good.name].status == ClipStatus.DONE
