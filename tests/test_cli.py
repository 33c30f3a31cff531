"""`homesec process`: the configured pipeline, once, over the given files."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import yaml
from typer.testing import CliRunner

import tests.fakes.plugins  # noqa: F401
from homesec.cli import app
from homesec.models.enums import ClipStatus, StageName, StageStatus
from homesec.models.state import ClipStateData
from tests.fakes.builders import config_dict


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(tmp_path)))
    return path


def _states(output: str) -> list[ClipStateData]:
    return [ClipStateData.model_validate_json(line) for line in output.splitlines() if line]


def test_process_prints_one_state_per_clip_and_exits_0_even_on_a_bad_clip(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a good clip and a corrupt one
    good = tmp_path / "front_door_1700000000.mp4"
    shutil.copyfile(person_clip, good)
    bad = tmp_path / "front_door_1700000001.mp4"
    bad.write_bytes(b"truncated")

    # When both are processed
    result = CliRunner().invoke(
        app, ["process", "--config", str(_config_file(tmp_path)), str(good), str(bad)]
    )

    # Then it exits 0 and prints one JSON state per clip
    assert result.exit_code == 0, result.output
    states = {state.clip_id: state for state in _states(result.stdout)}
    assert states[good.name].status == ClipStatus.DONE
    assert states[good.name].filter_result is not None
    assert states[bad.name].stages[StageName.FILTER].status == StageStatus.ERROR


def test_files_off_the_naming_rule_get_a_clip_id_for_the_given_camera(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a file with a camera's own name
    odd = tmp_path / "VID_0001.mp4"
    shutil.copyfile(person_clip, odd)
    os.utime(odd, (1700000900, 1700000900))

    # When processed for the front_door camera
    result = CliRunner().invoke(
        app,
        ["process", "--config", str(_config_file(tmp_path)), "--camera", "front_door", str(odd)],
    )

    # Then its clip_id follows the rule, from the file's time
    assert result.exit_code == 0, result.output
    [state] = _states(result.stdout)
    assert state.clip_id == "front_door_1700000900.mp4"
    assert state.camera_name == "front_door"


def test_two_files_of_one_second_are_two_clips(
    tmp_path: Path, person_clip: Path, empty_scene_clip: Path
) -> None:
    # Given two different files off the naming rule with the same modification second
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    shutil.copyfile(person_clip, first)
    shutil.copyfile(empty_scene_clip, second)
    for path in (first, second):
        os.utime(path, (1700000900.2, 1700000900.7))

    # When both are processed in one run
    config = _config_file(tmp_path)
    result = CliRunner().invoke(app, ["process", "--config", str(config), str(first), str(second)])

    # Then each is a clip of its own, analysed and stored with its own bytes
    assert result.exit_code == 0, result.output
    states = _states(result.stdout)
    assert sorted(state.clip_id for state in states) == [
        "front_door_1700000900.mp4",
        "front_door_1700000900_2.mp4",
    ]
    assert all(state.status == ClipStatus.DONE for state in states)
    stored = {p.name: p.read_bytes() for p in (tmp_path / "storage" / "front_door").glob("*.mp4")}
    assert sorted(stored.values()) == sorted(
        [person_clip.read_bytes(), empty_scene_clip.read_bytes()]
    )


def test_a_file_under_a_name_used_before_is_a_new_clip(tmp_path: Path, person_clip: Path) -> None:
    # Given a clip processed once under its clip_id
    clip = tmp_path / "front_door_1700000000.mp4"
    shutil.copyfile(person_clip, clip)
    config = _config_file(tmp_path)
    first = CliRunner().invoke(app, ["process", "--config", str(config), str(clip)])
    assert first.exit_code == 0, first.output

    # When a file of the same name is processed again (a camera clock that went back)
    again = CliRunner().invoke(app, ["process", "--config", str(config), str(clip)])

    # Then it is a new clip with the next free name, processed in full, not the old one's repeat
    assert again.exit_code == 0, again.output
    [state] = _states(again.stdout)
    assert state.clip_id == "front_door_1700000000_2.mp4"
    assert state.status == ClipStatus.DONE
    assert state.stage(StageName.FILTER).attempts == 1
    assert (tmp_path / "storage" / "front_door" / "front_door_1700000000_2.mp4").is_file()


def test_process_cannot_run_without_its_inputs(tmp_path: Path) -> None:
    # Given a missing clip, an unknown camera and a broken config
    config = _config_file(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 2\n")
    clip = tmp_path / "front_door_1700000000.mp4"
    clip.write_bytes(b"x")

    # When process is asked to run
    missing = CliRunner().invoke(app, ["process", "--config", str(config), "nope.mp4"])
    camera = CliRunner().invoke(
        app, ["process", "--config", str(config), "--camera", "attic", str(clip)]
    )
    invalid = CliRunner().invoke(app, ["process", "--config", str(broken), str(clip)])

    # Then each exits non-zero with a reason
    assert missing.exit_code != 0
    assert camera.exit_code == 2 and "'attic' is not a configured camera" in camera.output
    assert invalid.exit_code == 2 and "version" in invalid.output


def test_run_exits_with_a_reason_when_the_api_port_is_taken(tmp_path: Path) -> None:
    # Given a port already in use
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        raw = config_dict(tmp_path, server={"enabled": True, "host": "127.0.0.1", "port": port})
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))

        # When the service is started on it
        result = CliRunner().invoke(app, ["run", "--config", str(path)])

    # Then it stops at once with a one-line reason
    assert result.exit_code == 2
    assert f"HTTP API cannot listen on 127.0.0.1:{port}" in result.output


def test_run_refuses_a_watch_folder_that_is_a_file_before_starting(tmp_path: Path) -> None:
    # Given a camera watching a path that is a file
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    raw = config_dict(tmp_path)
    raw["cameras"][0]["source"]["config"]["watch_dir"] = str(a_file)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))

    # When the service is started
    result = CliRunner().invoke(app, ["run", "--config", str(path)])

    # Then it stops at once with the key path and the reason, not a traceback
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: cameras[0].source.config.watch_dir: {a_file} is a file, not a folder\n"
    )


def test_run_ends_with_one_line_when_a_folder_cannot_be_created(tmp_path: Path) -> None:
    # Given a watch folder nobody may create, not even root: sysfs refuses new entries
    folder = Path("/sys/homesec-test-watch")
    raw = config_dict(tmp_path)
    raw["cameras"][0]["source"]["config"]["watch_dir"] = str(folder)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))

    # When the service is started
    result = CliRunner().invoke(app, ["run", "--config", str(path)])

    # Then it stops with a one-line reason naming the folder, not a traceback
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: cannot start: {folder}: ")
    assert "Traceback" not in result.output
