"""Early detection on live streams: an RTSP clip's detection event goes out while the clip is
still being recorded, once, under the clip_id the finalized clip gets (also after a
restart); the final alert follows with the same dedupe_key. Real camera, detector, broker
and Postgres; the restart case with the fake detector."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from homesec.models.alert import Alert, DetectionEvent
from homesec.models.clip import LiveSegment
from homesec.models.config import Config
from homesec.models.enums import ClipStatus, EventType
from homesec.pipeline.early import EarlyDetection
from homesec.repository.clip_repository import ClipRepository
from tests.fakes.builders import clip_from, make_config
from tests.fakes.running import running_app
from tests.pipeline.conftest import BuildPipeline, mqtt_sink
from tests.plugins.sources.rtsp.conftest import wait_until
from tests.services.appearing_person import make_appearing_person_footage
from tests.services.mosquitto import BrokerAddress, MQTTSubscriber
from tests.services.rtsp_server import MakeCamera

# Cameras stream footage in real time; the detector runs while a clip is recorded.
pytestmark = pytest.mark.slow

URL_ENV = "HOMESEC_TEST_EARLY_CAMERA_URL"
DSN_ENV = "HOMESEC_TEST_EARLY_DSN"


@pytest.fixture(scope="session")
def appearing_person_footage(rtsp_footage_dir: Path, media_dir: Path) -> Path:
    """3 s of an empty lawn, then 5 s of people walking; the camera loops it."""
    return make_appearing_person_footage(
        media_dir, rtsp_footage_dir / "appearing_person.mp4", empty_s=3, person_s=5
    )


@pytest.fixture
def live_config(
    tmp_path: Path,
    models_dir: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
    postgres_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """The config of one RTSP camera `porch` (camera settings as given), with the real
    detector, the MQTT sink taking detection events, and Postgres."""
    monkeypatch.setenv(DSN_ENV, postgres_dsn)

    def build(camera_url: str, **camera: Any) -> Config:
        monkeypatch.setenv(URL_ENV, camera_url)
        source = {
            "rtsp_url_env": URL_ENV,
            "recordings_dir": str(tmp_path / "porch"),
            "hwaccel": "off",
            "pre_roll_s": 1.0,
            **camera,
        }
        return make_config(
            tmp_path,
            cameras=[{"name": "porch", "source": {"backend": "rtsp", "config": source}}],
            filter={
                "backend": "yolo",
                "config": {"model": str(models_dir / "yolox_nano.onnx"), "classes": ["person"]},
            },
            notifiers=[mqtt_sink(mqtt_broker, mqtt_topic_prefix)],
            state_store={"dsn_env": DSN_ENV},
        )

    return build


async def _stored_as_sent(repository: ClipRepository, clip_id: str) -> None:
    """Wait until the clip's state says its detection event went out."""
    async with asyncio.timeout(5):
        while True:
            state = await repository.get(clip_id)
            if state is not None and state.detection_sent_at is not None:
                return
            await asyncio.sleep(0.05)


def _kind_and_clip(message: aiomqtt.Message) -> tuple[str, str]:
    """("detections" or "alerts", clip_id) of a message of the MQTT sink."""
    payload = json.loads(message.payload)
    return str(message.topic).split("/")[-2], payload["clip_id"]


async def _drain(subscriber: MQTTSubscriber, quiet_s: float) -> list[aiomqtt.Message]:
    """Every message until none came for `quiet_s` seconds."""
    messages = []
    while True:
        try:
            messages.append(await subscriber.next(timeout=quiet_s))
        except AssertionError:
            return messages


async def test_the_detection_event_of_an_rtsp_clip_goes_out_while_it_is_recorded_and_once(
    make_rtsp_camera: MakeCamera,
    appearing_person_footage: Path,
    live_config: Any,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
    tmp_path: Path,
) -> None:
    # Given a camera where people appear after an empty scene, recorded in clips of 12 s
    camera = make_rtsp_camera(appearing_person_footage)
    config = live_config(camera.url, stop_delay_s=30.0, max_clip_s=12.0)
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber,
        running_app(config) as app,
    ):
        # When the people appear
        first = await subscriber.next(timeout=40)

        # Then the detection event comes while the clip is still being recorded...
        assert _kind_and_clip(first)[0] == "detections"
        event = DetectionEvent.model_validate_json(first.payload)
        clip_path = tmp_path / "porch" / event.clip_id
        assert not clip_path.exists()
        assert event.camera_name == "porch" and event.detected_classes == ["person"]
        assert event.dedupe_key == event.clip_id and event.analysis_pending is True
        assert event.snapshot == str(clip_path.with_name(f"{clip_path.stem}.snapshot.jpg"))
        assert Path(event.snapshot).is_file()
        # ...and the clip's state says so before the clip exists (a restart knows it)
        repository = app.components.repository
        await _stored_as_sent(repository, event.clip_id)
        assert not clip_path.exists()

        # And when the clip is finalized, its final alert carries the same dedupe_key
        later = [await subscriber.next(timeout=60)]
        while _kind_and_clip(later[-1]) != ("alerts", event.clip_id):
            later.append(await subscriber.next(timeout=60))
        assert clip_path.is_file()
        alert = Alert.model_validate_json(later[-1].payload)
        assert alert.dedupe_key == event.dedupe_key

        # And no second detection event went out for that clip
        later += await _drain(subscriber, quiet_s=1.5)
        assert ("detections", event.clip_id) not in [_kind_and_clip(m) for m in later]
        events = await repository.list_events(event.clip_id)
        assert [e.event_type for e in events].count(EventType.DETECTION_SENT) == 1
        state = await repository.get(event.clip_id)
        assert state is not None and state.detection_sent_at == event.ts


async def test_a_stream_without_a_person_sends_no_detection_event(
    make_rtsp_camera: MakeCamera,
    moving_box_footage: Path,
    live_config: Any,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
    tmp_path: Path,
) -> None:
    # Given a camera where only a box moves, recorded in clips of 4 s
    camera = make_rtsp_camera(moving_box_footage)
    config = live_config(camera.url, max_clip_s=4.0)
    async with (
        MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber,
        running_app(config) as app,
    ):
        # When clips are recorded and the first one is processed
        recordings = tmp_path / "porch"
        await wait_until(
            lambda: any(recordings.glob("porch_*.mp4")), timeout=40, what="a finished clip"
        )
        (clip,) = list(recordings.glob("porch_*.mp4"))[:1]
        repository = app.components.repository

        async def processed() -> bool:
            state = await repository.get(clip.name)
            return state is not None and state.filter_result is not None

        async with asyncio.timeout(20):
            while not await processed():
                await asyncio.sleep(0.1)

        # Then no detection event (nor alert) was sent for any clip
        await subscriber.expect_silence(within=1.0)


async def test_a_clip_announced_while_recorded_does_not_announce_again_after_a_restart(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given a detection event sent from a live segment of a clip being recorded
    pipeline_config: dict[str, Any] = {
        "filter": {"backend": "fake_filter", "config": {"box": [800, 300, 1000, 800]}},
        "notifiers": [mqtt_sink(mqtt_broker, mqtt_topic_prefix)],
    }
    spool = tmp_path / "spool"
    live = LiveSegment(
        camera_name="front_door",
        clip_path=spool / "front_door_1700000000.mp4",
        path=clip_from(person_clip, tmp_path / "segments", ts=1700000001).local_path,
        start_ts=datetime.fromtimestamp(1700000000, UTC),
    )
    async with MQTTSubscriber(mqtt_broker, f"{mqtt_topic_prefix}/#") as subscriber:
        async with build_pipeline(**pipeline_config) as components:
            early = EarlyDetection(
                components.object_filter,
                components.pipeline.detections,
                components.pipeline.journals,
                components.pipeline,
            )
            early.on_segment(live)
            detection = await subscriber.next(timeout=10)
            await _stored_as_sent(components.repository, live.clip_id)
            await early.aclose()

        # When HomeSec restarts and the finalized clip is processed
        async with build_pipeline(**pipeline_config) as components:
            clip = clip_from(person_clip, spool)
            state = await components.pipeline.process(clip)

        # Then only the final alert goes out, with the dedupe_key of the detection event
        messages = await _drain(subscriber, quiet_s=1.5)

    assert _kind_and_clip(detection) == ("detections", clip.clip_id)
    assert [_kind_and_clip(m) for m in messages] == [("alerts", clip.clip_id)]
    assert state.detection_sent_at is not None


async def test_early_detection_and_the_pipeline_at_once_keep_one_state_of_the_clip(
    build_pipeline: BuildPipeline,
    person_clip: Path,
    tmp_path: Path,
    mqtt_broker: BrokerAddress,
    mqtt_topic_prefix: str,
) -> None:
    # Given a pipeline with a slow VLM, and early detection looking at a live segment
    pipeline_config: dict[str, Any] = {
        "filter": {"backend": "fake_filter", "config": {"box": [800, 300, 1000, 800]}},
        "vlm": {"backend": "fake_vlm", "config": {"delay_s": 0.5}},
        "notifiers": [mqtt_sink(mqtt_broker, mqtt_topic_prefix)],
    }
    spool = tmp_path / "spool"
    live = LiveSegment(
        camera_name="front_door",
        clip_path=spool / "front_door_1700000000.mp4",
        path=clip_from(person_clip, tmp_path / "segments", ts=1700000001).local_path,
        start_ts=datetime.fromtimestamp(1700000000, UTC),
    )
    async with build_pipeline(**pipeline_config) as components:
        early = EarlyDetection(
            components.object_filter,
            components.pipeline.detections,
            components.pipeline.journals,
            components.pipeline,
        )

        # When the live segment's detection and the finalized clip's processing overlap
        early.on_segment(live)
        state = await components.pipeline.process(clip_from(person_clip, spool))
        await asyncio.sleep(0.5)
        await early.aclose()
        stored = await components.repository.get(live.clip_id)
        events = await components.repository.list_events(live.clip_id)

    # Then one state holds both: the clip is done and its detection event is recorded once
    assert stored is not None and stored.status == state.status == ClipStatus.DONE
    assert stored.detection_sent_at is not None
    assert [e.event_type for e in events].count(EventType.DETECTION_SENT) == 1
