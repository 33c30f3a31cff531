"""yolo filter model resolution: paths, names in HOMESEC_MODEL_DIR, one verified download,
clear start-up errors offline; and the config's validation."""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from homesec.errors import PluginError
from homesec.plugins.filters.yolo.models_cache import (
    KNOWN_MODELS,
    MODEL_DIR_ENV,
    ModelUnavailableError,
    resolve_model,
)
from homesec.plugins.filters.yolo.plugin import YoloFilter, YoloFilterConfig


@dataclass
class ReleaseServer:
    """A local stand-in for the release download site."""

    url: str
    folder: Path
    requests: list[str] = field(default_factory=list)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def release(tmp_path: Path, yolox_nano: Path) -> Iterator[ReleaseServer]:
    """Serves a copy of the shared yolox_nano.onnx over HTTP on loopback."""
    root = tmp_path / "site"
    folder = root / "0.1.1rc0"
    folder.mkdir(parents=True)
    shutil.copy(yolox_nano, folder / "yolox_nano.onnx")
    requests: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield ReleaseServer(f"http://127.0.0.1:{server.server_address[1]}/0.1.1rc0", folder, requests)
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_model_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # A model folder set in the environment would hide the download path.
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
async def test_a_named_model_is_downloaded_once_and_verified(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    release: ReleaseServer,
    yolox_nano: Path,
    person_clip: Path,
) -> None:
    # Given an empty cache, an empty home folder, and a release server whose file has a
    # known digest
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    config = YoloFilterConfig(
        model="yolox_nano",
        cache_dir=tmp_path / "cache",
        release_url=release.url,
        model_sha256=sha256_of(yolox_nano),
    )

    # When the filter is created, used, and created again
    yolo = YoloFilter.create(config)
    try:
        result = await yolo.detect(person_clip)
    finally:
        await yolo.aclose()
    again = resolve_model(
        "yolox_nano",
        cache_dir=config.cache_dir,
        release_url=release.url,
        sha256=config.model_sha256,
    )

    # Then the file was fetched once into the cache, nothing was written elsewhere, and it works
    assert release.requests == ["/0.1.1rc0/yolox_nano.onnx"]
    assert again == tmp_path / "cache" / "yolox_nano.onnx"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["yolox_nano.onnx"]
    assert list(home.iterdir()) == []
    assert result.model == "yolox_nano"
    assert "person" in result.detected_classes


def test_a_download_that_fails_its_checksum_is_discarded(
    tmp_path: Path, release: ReleaseServer
) -> None:
    # Given a release server whose yolox_nano.onnx is not the officially pinned file
    config = YoloFilterConfig(
        model="yolox_nano", cache_dir=tmp_path / "cache", release_url=release.url
    )

    # When the filter is created
    with pytest.raises(ModelUnavailableError, match="failed its checksum") as caught:
        YoloFilter.create(config)

    # Then start-up fails, naming the expected and the received digests, and nothing is
    # left in the cache
    assert KNOWN_MODELS["yolox_nano"].sha256 in str(caught.value)
    assert f"got {sha256_of(release.folder / 'yolox_nano.onnx')}" in str(caught.value)
    assert isinstance(caught.value, PluginError)
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_start_up_says_where_to_put_the_model(tmp_path: Path) -> None:
    # Given no model on disk and a release site that cannot be reached
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = YoloFilterConfig(
        model="yolox_tiny",
        cache_dir=tmp_path / "cache",
        release_url=f"http://127.0.0.1:{closed_port}/0.1.1rc0",
    )

    # When the filter is created
    with pytest.raises(ModelUnavailableError) as caught:
        YoloFilter.create(config)

    # Then the error names the URL, the digest, and where the file can be put
    message = str(caught.value)
    assert f"could not download http://127.0.0.1:{closed_port}/0.1.1rc0/yolox_tiny.onnx" in message
    assert KNOWN_MODELS["yolox_tiny"].sha256 in message
    assert str(tmp_path / "cache" / "yolox_tiny.onnx") in message
    assert MODEL_DIR_ENV in message


def test_with_downloads_off_a_missing_model_fails_at_start_up(
    tmp_path: Path, release: ReleaseServer
) -> None:
    # Given downloads turned off and an empty cache
    config = YoloFilterConfig(
        model="yolox_nano",
        cache_dir=tmp_path / "cache",
        release_url=release.url,
        allow_download=False,
    )

    # When the filter is created
    # Then it fails without asking the server, saying where to put the file
    with pytest.raises(ModelUnavailableError, match="downloads are off") as caught:
        YoloFilter.create(config)
    assert str(tmp_path / "cache" / "yolox_nano.onnx") in str(caught.value)
    assert release.requests == []


def test_a_missing_release_file_is_reported_with_its_http_status(
    tmp_path: Path, release: ReleaseServer
) -> None:
    # Given a release server without yolox_s.onnx
    # When it is asked for
    # Then the error carries the HTTP status
    with pytest.raises(ModelUnavailableError, match="HTTP 404"):
        resolve_model("yolox_s", cache_dir=tmp_path / "cache", release_url=release.url)


@pytest.mark.slow
async def test_a_name_is_found_in_the_model_dir_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path, person_clip: Path
) -> None:
    # Given HOMESEC_MODEL_DIR naming a folder of models, and downloads off
    monkeypatch.setenv(MODEL_DIR_ENV, str(models_dir))
    config = YoloFilterConfig(
        model="yolox_nano", cache_dir=tmp_path / "cache", allow_download=False
    )

    # When the filter is created by name
    yolo = YoloFilter.create(config)
    try:
        result = await yolo.detect(person_clip)
    finally:
        await yolo.aclose()

    # Then the file from that folder is used
    assert result.model == "yolox_nano"
    assert "person" in result.detected_classes
    assert resolve_model("yolov8n_int8", cache_dir=tmp_path) == models_dir / "yolov8n_int8.onnx"


def test_an_unknown_name_or_missing_path_fails_at_start_up(tmp_path: Path) -> None:
    # Given names and paths that lead nowhere
    # When the filter is created with each
    # Then start-up fails with what was looked for
    with pytest.raises(ModelUnavailableError, match="not a known name"):
        YoloFilter.create(YoloFilterConfig(model="yolov9_huge", cache_dir=tmp_path))
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        YoloFilter.create(YoloFilterConfig(model=str(tmp_path / "nowhere.onnx")))


def test_a_file_that_is_not_a_detector_fails_at_start_up(tmp_path: Path) -> None:
    # Given a file named like a model that is not one
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("not a model")

    # When the filter is created with it
    # Then start-up fails, saying so
    with pytest.raises(ModelUnavailableError, match="not a loadable ONNX model"):
        YoloFilter.create(YoloFilterConfig(model=str(bogus)))


def test_a_pinned_digest_is_required_of_local_files_too(yolox_nano: Path) -> None:
    # Given a model path and a digest it does not have
    config = YoloFilterConfig(model=str(yolox_nano), model_sha256="0" * 64)

    # When the filter is created
    # Then start-up fails on the digest
    with pytest.raises(ModelUnavailableError, match="not the configured"):
        YoloFilter.create(config)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"classes": ["person", "unicorn"]}, "unknown class 'unicorn'"),
        ({"classes": []}, "at least 1 item"),
        ({"input_size": 500}, "multiple of 32"),
        ({"providers": ["tpu"]}, "cpu"),
        ({"sample_fps": 0}, "greater than 0"),
        ({"modle": "yolox_s"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_refused(raw: dict[str, Any], message: str) -> None:
    # Given a config with a mistake
    # When it is validated
    # Then the error says what is wrong
    with pytest.raises(ValidationError, match=message):
        YoloFilterConfig.model_validate(raw)


def test_every_config_field_is_described() -> None:
    # Given the config model
    # When its fields are listed
    # Then each one has a description (the config reference is generated from them)
    assert all(field.description for field in YoloFilterConfig.model_fields.values())
