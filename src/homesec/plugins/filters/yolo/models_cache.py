"""Finding the detector's ONNX file: a path, or a known name fetched once into a cache.

A name is looked up as `{name}.onnx` in the folder named by `HOMESEC_MODEL_DIR` (when set),
then in the cache folder. A known name missing from both is downloaded once from the
official Megvii YOLOX release by pooch, with a progress bar, and kept only if its SHA-256
matches the pinned digest. Files already on disk are used as they are, unless the config
pins a digest.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from homesec.errors import PluginError

logger = logging.getLogger(__name__)

MODEL_DIR_ENV = "HOMESEC_MODEL_DIR"
OFFICIAL_RELEASE_URL = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0"
DEFAULT_CACHE_DIR = Path("~/.cache/homesec/models")

_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 30.0
_CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class ReleaseAsset:
    """A model file of the official release and its pinned digest."""

    file_name: str
    sha256: str
    size: int


# Digests of the 0.1.1rc0 release assets. GitHub shows none for assets this old, so these
# are the values recorded by several independent projects that pin these files.
KNOWN_MODELS: dict[str, ReleaseAsset] = {
    "yolox_nano": ReleaseAsset(
        "yolox_nano.onnx",
        "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d",
        3_659_407,
    ),
    "yolox_tiny": ReleaseAsset(
        "yolox_tiny.onnx",
        "427cc366d34e27ff7a03e2899b5e3671425c262ea2291f88bb942bc1cc70b0f7",
        20_219_662,
    ),
    "yolox_s": ReleaseAsset(
        "yolox_s.onnx",
        "c5c2d13e59ae883e6af3b45daea64af4833a4951c92d116ec270d9ddbe998063",
        35_858_002,
    ),
}


class ModelUnavailableError(PluginError):
    """The configured model cannot be found, fetched or trusted; the message says what to do."""


def resolve_model(
    model: str,
    *,
    cache_dir: Path,
    release_url: str = OFFICIAL_RELEASE_URL,
    allow_download: bool = True,
    sha256: str | None = None,
) -> Path:
    """The local file for `model` (a path, or a name), downloading a known name if needed.

    `sha256`, when given, is required of the file whether found or downloaded; otherwise
    only downloads are checked, against the pinned digest.
    """
    cache_dir = cache_dir.expanduser()
    if _is_path(model):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"model file {path} does not exist")
        return _verified(path, sha256)
    file_name = f"{model}.onnx"
    for folder in _search_dirs(cache_dir):
        if (folder / file_name).is_file():
            return _verified(folder / file_name, sha256)
    asset = KNOWN_MODELS.get(model)
    if asset is None:
        known = ", ".join(KNOWN_MODELS)
        where = " or ".join(str(folder) for folder in _search_dirs(cache_dir))
        raise ModelUnavailableError(
            f"model {model!r} is not a known name ({known}) and {file_name} is not in {where}; "
            f"set `model` to the path of an .onnx file"
        )
    if sha256 is not None:
        asset = ReleaseAsset(asset.file_name, sha256, asset.size)
    url = f"{release_url.rstrip('/')}/{asset.file_name}"
    if not allow_download:
        raise ModelUnavailableError(
            f"model {model!r} is not on this machine and downloads are off. "
            + _where_to_put(url, asset, cache_dir)
        )
    return download_model(url, asset, cache_dir)


def download_model(url: str, asset: ReleaseAsset, cache_dir: Path) -> Path:
    """Fetch `url` into `cache_dir`, keeping it only if its SHA-256 is the asset's.

    pooch writes to a temporary file in `cache_dir` and renames it only once the digest
    matches, so a half-written or wrong file never has the model's name.
    """
    logger.info("Downloading model %s from %s", asset.file_name, url)
    # pooch's own logger prints to stderr, outside the logging setup; ours says the same.
    pooch.get_logger().setLevel(logging.WARNING)
    try:
        columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        display = Progress(TextColumn("{task.description}"), *columns, console=Console(stderr=True))
        with display:
            task = display.add_task(f"Downloading {asset.file_name}", total=asset.size)
            downloader = pooch.HTTPDownloader(
                progressbar=_ProgressBar(display, task),
                chunk_size=_CHUNK_BYTES,
                timeout=(_CONNECT_TIMEOUT_S, _READ_TIMEOUT_S),
            )
            pooch.retrieve(
                url,
                known_hash=f"sha256:{asset.sha256}",
                fname=asset.file_name,
                path=cache_dir,
                downloader=downloader,
            )
    except requests.RequestException as exc:
        raise ModelUnavailableError(
            f"could not download {url} ({_describe(exc)}). " + _where_to_put(url, asset, cache_dir),
            cause=exc,
        ) from exc
    except ValueError as exc:  # pooch's digest mismatch; it has deleted the download
        got = re.search(r"but got (\w+)", str(exc))
        raise ModelUnavailableError(
            f"download of {url} failed its checksum (expected sha256 {asset.sha256}, got "
            f"{got.group(1) if got else 'another'}); the file was discarded",
            cause=exc,
        ) from exc
    target = cache_dir / asset.file_name
    logger.info("Model %s saved to %s", asset.file_name, target)
    return target


@dataclass
class _ProgressBar:
    """The progress bar object pooch drives (`total`, `update`, `reset`, `close`) on rich."""

    progress: Progress
    task: TaskID
    total: int = 0  # set by pooch from content-length; 0 (unknown) keeps the release's size

    def update(self, count: int) -> None:
        self.progress.update(self.task, advance=count, total=self.total or None)

    def reset(self) -> None:
        self.progress.reset(self.task)

    def close(self) -> None:
        """Nothing to do: the `Progress` display stops when its block ends, failed or not."""


def _verified(path: Path, sha256: str | None) -> Path:
    if sha256 is None:
        return path
    digest = pooch.file_hash(str(path))
    if digest != sha256:
        raise ModelUnavailableError(
            f"model file {path} has sha256 {digest}, not the configured {sha256}"
        )
    return path


def _is_path(model: str) -> bool:
    return "/" in model or os.sep in model or model.endswith(".onnx")


def _search_dirs(cache_dir: Path) -> list[Path]:
    extra = os.environ.get(MODEL_DIR_ENV)
    return [Path(extra).expanduser(), cache_dir] if extra else [cache_dir]


def _where_to_put(url: str, asset: ReleaseAsset, cache_dir: Path) -> str:
    return (
        f"Download {url} (sha256 {asset.sha256}) on a connected machine and save it as "
        f"{cache_dir / asset.file_name}, or into the folder named by ${MODEL_DIR_ENV}, "
        f"or set `model` to the path of an .onnx file"
    )


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    # requests wraps the socket's error in urllib3's; the innermost one says it plainly.
    reason: BaseException = exc
    while (inner := reason.__cause__ or reason.__context__) is not None:
        reason = inner
    return str(reason) or type(reason).__name__
