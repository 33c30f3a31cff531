"""Modes in the pipeline: a camera off in the mode (or switched off) keeps recording and
uploading, but gets no VLM, no detection event and no alert; every decision says its mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homesec.models.enums import ClipStatus, ModeSetter, StageName, StageStatus
from tests.fakes.builders import clip_from
from tests.fakes.plugins import FakeVLM, RecordingNotifier
from tests.pipeline.conftest import BuildPipeline, mqtt_sink
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber


def _sections(broker: BrokerAddress, prefix: str) -> dict[str, Any]:
    """Modes home and away; at home the front door is off. Alerts go to a recorder and MQTT."""
    return {
        "modes": {"names": ["home", "away"]},
        "alert_policy": {
            "backend": "default",
            "config": {"modes": {"home": {"overrides": {"front_door": {"enabled": False}}}}},
        },
        "notifiers": [{"backend": "fake_recorder", "config": {}}, mqtt_sink(broker, prefix)],
    }


async def test_a_camera_off_in_the_mode_uploads_but_costs_no_vlm_and_alerts_nobody(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given HomeSec at home, where the front door's alerts are off
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/detections/#") as detections,
        build_pipeline(**_sections(mqtt_broker, mqtt_topic_prefix)) as components,
    ):
        # When a clip of a person at the front door is processed
        clip = clip_from(person_clip, tmp_path / "spool")
        state = await components.pipeline.process(clip)

        # Then it is uploaded and done, with no detection event, no VLM call and no alert;
        # the decision says why and in which mode
        await detections.expect_silence(1.0)
    assert state.status == ClipStatus.DONE
    assert (tmp_path / "storage" / "front_door" / clip.clip_id).is_file()
    assert state.stage(StageName.VLM).status == StageStatus.SKIPPED
    assert isinstance(components.analyzer, FakeVLM) and components.analyzer.calls == []
    recorder = components.notifiers[0]
    assert isinstance(recorder, RecordingNotifier) and recorder.alerts == []
    assert state.alert_decision is not None
    assert state.alert_decision.model_dump() == {
        "notify": False,
        "notify_reason": "alerts off for front_door in mode home",
        "mode": "home",
    }


async def test_the_same_clip_alerts_once_the_mode_is_away_and_the_decision_says_so(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given the same HomeSec, set to away
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/detections/#") as detections,
        build_pipeline(**_sections(mqtt_broker, mqtt_topic_prefix)) as components,
    ):
        assert components.modes is not None
        await components.modes.set_mode("away", ModeSetter.API)

        # When the clip is processed
        state = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))

        # Then the detection event, the VLM and the alert all happen, in mode away
        await detections.next(timeout=10)
    assert isinstance(components.analyzer, FakeVLM) and len(components.analyzer.calls) == 1
    recorder = components.notifiers[0]
    assert isinstance(recorder, RecordingNotifier) and len(recorder.alerts) == 1
    assert state.alert_decision is not None
    assert (state.alert_decision.notify, state.alert_decision.mode) == (True, "away")


async def test_a_camera_switched_off_by_hand_is_quiet_in_every_mode(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given HomeSec away (the front door would alert), its front door switched off
    async with build_pipeline(**_sections(mqtt_broker, mqtt_topic_prefix)) as components:
        assert components.modes is not None
        await components.modes.set_mode("away", ModeSetter.API)
        await components.modes.set_alerts("front_door", False, ModeSetter.UI)

        # When a clip is processed, then the switch is turned on and another one comes
        quiet = await components.pipeline.process(clip_from(person_clip, tmp_path / "spool"))
        await components.modes.set_alerts("front_door", True, ModeSetter.UI)
        loud = await components.pipeline.process(
            clip_from(person_clip, tmp_path / "spool", ts=1700000100)
        )

    # Then the first is uploaded without VLM or alert, the second alerts
    assert quiet.is_uploaded and quiet.alert_decision is not None
    assert quiet.alert_decision.notify_reason == "alerts of front_door switched off"
    assert quiet.stage(StageName.VLM).status == StageStatus.SKIPPED
    assert loud.alert_decision is not None and loud.alert_decision.notify is True
    assert isinstance(components.analyzer, FakeVLM) and len(components.analyzer.calls) == 1


async def test_an_alert_one_sink_took_reaches_the_others_after_the_mode_changed(
    build_pipeline: BuildPipeline, person_clip: Path, tmp_path: Path
) -> None:
    # Given HomeSec away (where the front door alerts; at home it is off), with two sinks,
    # one of them down
    sink_down = tmp_path / "sink-down"
    sink_down.touch()
    sections: dict[str, Any] = {
        "modes": {"names": ["home", "away"]},
        "alert_policy": {
            "backend": "default",
            "config": {"modes": {"home": {"overrides": {"front_door": {"enabled": False}}}}},
        },
        "notifiers": [
            {"backend": "fake_recorder", "config": {"name": "phone"}},
            {"backend": "fake_recorder", "config": {"name": "siren", "fail_while": str(sink_down)}},
        ],
    }
    clip = clip_from(person_clip, tmp_path / "spool")
    async with build_pipeline(**sections) as components:
        assert components.modes is not None
        await components.modes.set_mode("away", ModeSetter.API)
        first = await components.pipeline.process(clip)

        # When the person comes home (mode home), HomeSec restarts with the sink back, and
        # the clip is taken again (as start-up recovery does)
        await components.modes.set_mode("home", ModeSetter.API)
    sink_down.unlink()
    async with build_pipeline(**sections) as components:
        again = await components.pipeline.process(clip)
        siren = components.notifiers[1]

    # Then the alert the phone already had reaches the siren too, and the decision is still
    # the one made away
    assert first.alerted_sinks == ["phone"]
    assert isinstance(siren, RecordingNotifier) and len(siren.alerts) == 1
    assert again.alert_decision is not None
    assert (again.alert_decision.notify, again.alert_decision.mode) == (True, "away")
    assert sorted(again.alerted_sinks) == ["phone", "siren"]
