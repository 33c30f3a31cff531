"""Faults: the database or the broker going away, and the process killed mid-clip."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.fakes.plugins
from homesec.models.alert import Alert
from homesec.models.enums import ClipStatus, StageName, StageStatus
from tests.e2e.helpers import clip_rows, drop_clip, wait_for_state
from tests.fakes.builders import config_dict, make_config
from tests.fakes.plugins import read_alert_log
from tests.fakes.running import running_app
from tests.services.mosquitto import MQTTSubscriber, ThrowawayBroker
from tests.services.postgres import ThrowawayPostgres

REPO = Path(__file__).parents[2]


async def _wait_for_alerts(log: Path, count: int, timeout: float = 20.0) -> list[Alert]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        alerts = read_alert_log(log)
        if len(alerts) >= count:
            return [Alert.model_validate(alert) for alert in alerts]
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} alerts, got {read_alert_log(log)}")


def _watch_dir(tmp_path: Path) -> Path:
    return Path(config_dict(tmp_path)["cameras"][0]["source"]["config"]["watch_dir"])


async def test_postgres_down_at_start_and_mid_run_never_stops_clips(
    tmp_path: Path,
    person_clip: Path,
    throwaway_postgres: ThrowawayPostgres,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the service started while its Postgres is down
    throwaway_postgres.stop()
    monkeypatch.setenv("HOMESEC_TEST_DSN", throwaway_postgres.dsn)
    alerts = tmp_path / "alerts.jsonl"
    config = make_config(
        tmp_path,
        state_store={"dsn_env": "HOMESEC_TEST_DSN", "write_timeout_s": 2},
        notifiers=[{"backend": "fake_recorder", "config": {"log_file": str(alerts)}}],
    )
    watch = _watch_dir(tmp_path)
    async with running_app(config) as app:
        # When clips arrive while it is down, after it starts, after it stops, after it is back
        drop_clip(person_clip, watch, "front_door_1700000010.mp4")
        await _wait_for_alerts(alerts, 1)
        dropped_while_down = app.components.repository.dropped_writes

        throwaway_postgres.start()
        drop_clip(person_clip, watch, "front_door_1700000011.mp4")
        await _wait_for_alerts(alerts, 2)
        second = await wait_for_state(throwaway_postgres.dsn, "front_door_1700000011.mp4")

        throwaway_postgres.stop()
        drop_clip(person_clip, watch, "front_door_1700000012.mp4")
        await _wait_for_alerts(alerts, 3)

        throwaway_postgres.start()
        drop_clip(person_clip, watch, "front_door_1700000013.mp4")
        await _wait_for_alerts(alerts, 4)
        fourth = await wait_for_state(throwaway_postgres.dsn, "front_door_1700000013.mp4")
        first = await wait_for_state(throwaway_postgres.dsn, "front_door_1700000010.mp4")
        third = await wait_for_state(throwaway_postgres.dsn, "front_door_1700000012.mp4")

    # Then every clip was uploaded and alerted; writes were dropped while down, and the clips
    # that finished then were stored `done` once it was back, with no restart
    assert dropped_while_down > 0
    assert first.status == second.status == third.status == fourth.status == ClipStatus.DONE
    assert len(list((tmp_path / "storage" / "front_door").glob("*.mp4"))) == 4


async def test_alerts_raised_while_the_broker_is_down_arrive_when_it_is_back(
    tmp_path: Path, person_clip: Path, throwaway_broker: ThrowawayBroker
) -> None:
    # Given a subscriber with a persistent session, then the broker goes down
    mqtt = await _broker_gone_with_session(throwaway_broker, "e2e-outage")
    config = make_config(tmp_path, notifiers=[mqtt])
    async with running_app(config) as app:
        # When a clip is processed during the outage
        drop_clip(person_clip, _watch_dir(tmp_path), "front_door_1700000020.mp4")
        deadline = asyncio.get_running_loop().time() + 20
        while (
            state := await app.components.repository.get("front_door_1700000020.mp4")
        ) is None or (state.stage(StageName.NOTIFY).status != StageStatus.OK):
            assert asyncio.get_running_loop().time() < deadline, "clip never reached notify"
            await asyncio.sleep(0.05)

        # And the broker comes back
        throwaway_broker.start()
        async with MQTTSubscriber(
            throwaway_broker, "homecam/alerts/#", session="e2e-outage"
        ) as subscriber:
            # Then the alert raised during the outage is delivered
            message = await subscriber.next(timeout=15)

    alert = Alert.model_validate_json(message.payload)
    assert alert.clip_id == "front_door_1700000020.mp4"


async def _broker_gone_with_session(broker: ThrowawayBroker, session: str) -> dict[str, Any]:
    """Register a persistent alert subscriber `session`, stop the broker; its mqtt sink."""
    async with MQTTSubscriber(broker, "homecam/alerts/#", session=session):
        pass
    broker.stop()
    return {
        "backend": "mqtt",
        "config": {
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.3,
        },
    }


def _write_config(tmp_path: Path, raw: dict[str, Any], dsn: str) -> tuple[Path, dict[str, str]]:
    """The config file of a `homesec run` process, and its environment (the DSN)."""
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    return config_path, {**os.environ, "HOMESEC_TEST_DSN": dsn}


def _homesec(config_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.run_homesec", "run", "--config", str(config_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(config_path.parent / "homesec.log").open("ab"),
    )


async def test_process_killed_mid_clip_finishes_it_after_restart(
    tmp_path: Path, person_clip: Path, postgres_dsn: str
) -> None:
    # Given `homesec run` as a real process with a slow detector and Postgres state
    alerts = tmp_path / "alerts.jsonl"
    raw = config_dict(
        tmp_path,
        state_store={"dsn_env": "HOMESEC_TEST_DSN"},
        filter={"backend": "fake_filter", "config": {"delay_s": 3.0}},
        notifiers=[{"backend": "fake_recorder", "config": {"log_file": str(alerts)}}],
    )
    config_path, env = _write_config(tmp_path, raw, postgres_dsn)
    clip_id = "front_door_1700000030.mp4"
    process = _homesec(config_path, env)
    try:
        # When a clip arrives and the process is killed while the detector runs
        drop_clip(person_clip, _watch_dir(tmp_path), clip_id)
        await wait_for_state(postgres_dsn, clip_id, ClipStatus.UPLOADED, timeout=30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        state_at_kill, _ = await clip_rows(postgres_dsn, clip_id)

        # Then the clip is still on disk, unfinished
        assert (_watch_dir(tmp_path) / clip_id).is_file()
        assert state_at_kill is not None and state_at_kill["status"] != "done"
        assert read_alert_log(alerts) == []

        # When the process is started again
        process = _homesec(config_path, env)
        final = await wait_for_state(postgres_dsn, clip_id, ClipStatus.DONE, timeout=30)
        await _wait_for_alerts(alerts, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)

    # Then recovery finished it without re-uploading, alerted once, and kept the file
    assert final.stages[StageName.UPLOAD].attempts == 1
    assert final.stages[StageName.FILTER].attempts == 2
    assert [alert["clip_id"] for alert in read_alert_log(alerts)] == [clip_id]
    assert (_watch_dir(tmp_path) / clip_id).is_file()
    # And SIGTERM is a clean shutdown
    assert exit_code == 0, (tmp_path / "homesec.log").read_text()
    log = (tmp_path / "homesec.log").read_text()
    assert "Recovering front_door_1700000030.mp4" in log
    assert json.dumps(postgres_dsn) not in log


async def test_an_alert_queued_during_a_broker_outage_survives_sigkill(
    tmp_path: Path, person_clip: Path, postgres_dsn: str, throwaway_broker: ThrowawayBroker
) -> None:
    # Given `homesec run` as a real process whose broker is down, and a subscriber session
    mqtt = await _broker_gone_with_session(throwaway_broker, "e2e-crash")
    raw = config_dict(tmp_path, state_store={"dsn_env": "HOMESEC_TEST_DSN"}, notifiers=[mqtt])
    config_path, env = _write_config(tmp_path, raw, postgres_dsn)
    clip_id = "front_door_1700000040.mp4"
    process = _homesec(config_path, env)
    try:
        # When a clip is alerted during the outage and the process is killed before the
        # broker is back
        drop_clip(person_clip, _watch_dir(tmp_path), clip_id)
        await wait_for_state(postgres_dsn, clip_id, ClipStatus.DONE, timeout=30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        # And the broker comes back and the process is started again
        throwaway_broker.start()
        async with MQTTSubscriber(
            throwaway_broker, "homecam/alerts/#", session="e2e-crash"
        ) as subscriber:
            process = _homesec(config_path, env)
            message = await subscriber.next(timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    # Then the alert raised before the crash is delivered after the restart
    alert = Alert.model_validate_json(message.payload)
    assert alert.clip_id == clip_id
    assert "go out first" in (tmp_path / "homesec.log").read_text()


async def test_a_camera_down_for_too_long_raises_a_system_alert_and_another_when_back(
    tmp_path: Path,
) -> None:
    # Given the service with a sink for system alerts and a short unhealthy threshold
    config = make_config(
        tmp_path,
        notifiers=[{"backend": "fake_recorder", "config": {"name": "ops"}}],
        pipeline={"camera_unhealthy_alert_s": 0.5, "work_dir": str(tmp_path / "work")},
    )
    watch = _watch_dir(tmp_path)
    async with running_app(config) as app:
        [sink] = app.components.notifiers
        assert isinstance(sink, tests.fakes.plugins.RecordingNotifier)
        # When the camera's folder disappears for a while, then comes back
        watch.rename(tmp_path / "gone")
        while not sink.system_alerts:
            await asyncio.sleep(0.05)
        (tmp_path / "gone").rename(watch)
        while len(sink.system_alerts) < 2:
            await asyncio.sleep(0.05)

    # Then one alert said it was down and one that it is back
    assert [(a.kind, a.camera_name) for a in sink.system_alerts] == [
        ("camera_unhealthy", "front_door"),
        ("camera_recovered", "front_door"),
    ]
