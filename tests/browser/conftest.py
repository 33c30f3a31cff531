"""The real service on the shared media, and Debian's Chromium driven by Playwright.

One service per module: two cameras (front door with people, an empty backyard) watch their
folders, the shared clips are dropped in and processed (local storage, SQLite, the fake VLM,
a fake detector that sees a person only at the front door), then the browser tests look at
the result. The browser is the system's /usr/bin/chromium (never a downloaded one).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright
from pydantic import Field

import tests.fakes.plugins  # noqa: F401  (registers the fake VLM)
from homesec.interfaces import PluginConfig
from homesec.models.clip import parse_clip_id
from homesec.models.enums import PluginType
from homesec.models.results import Detection, FilterOverrides, FilterResult
from homesec.plugins.registry import plugin
from tests.fakes.builders import make_config
from tests.fakes.running import running_app
from tests.services.shared_files import MEDIA_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
API_KEY = "browser-test-key"
KEY_ENV = "HOMESEC_TEST_UI_KEY"
CLIPS = {"front_door": "front_door_1700000000.mp4", "backyard": "backyard_1700000100.mp4"}


class SceneFilterConfig(PluginConfig):
    people_at: list[str] = Field(description="Cameras whose clips show a person")


@plugin(PluginType.FILTER, "fake_scene_filter", config=SceneFilterConfig)
class SceneFilter:
    """A detector that knows the shared footage: people at the front door, nobody elsewhere."""

    def __init__(self, config: SceneFilterConfig) -> None:
        self._people_at = set(config.people_at)

    @classmethod
    def create(cls, config: SceneFilterConfig) -> SceneFilter:
        return cls(config)

    async def detect(
        self, video_path: Path, overrides: FilterOverrides | None = None
    ) -> FilterResult:
        name = parse_clip_id(video_path.name)
        if name is None or name.camera_name not in self._people_at:
            return FilterResult(
                detected_classes=[], confidence=0.0, sampled_frames=20, model="fake"
            )
        person = Detection(
            class_name="person", confidence=0.88, first_seen_s=1.0, box=(820, 260, 1010, 760)
        )
        return FilterResult(
            detected_classes=["person"],
            confidence=0.88,
            sampled_frames=3,
            model="fake",
            detections=[person],
        )

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class Service:
    base_url: str


# The front door's one zone: the lower right quarter of the picture.
PORCH = [(0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)]


def _camera(root: Path, name: str) -> dict[str, object]:
    watch = {"watch_dir": str(root / "inbox" / name), "poll_interval_s": 0.1, "settle_s": 0.2}
    zones = {"porch": PORCH} if name == "front_door" else {}
    return {"name": name, "source": {"backend": "local_folder", "config": watch}, "zones": zones}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    """The running service after it processed both shared clips."""
    root = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV, API_KEY)
        config = make_config(
            root,
            cameras=[_camera(root, name) for name in CLIPS],
            filter={"backend": "fake_scene_filter", "config": {"people_at": ["front_door"]}},
            server={"enabled": True, "port": 0, "auth_enabled": True, "api_key_env": KEY_ENV},
        )
        async with running_app(config) as app:
            assert app.server is not None
            base_url = f"http://127.0.0.1:{app.server.port}"
            for camera, clip in CLIPS.items():
                shutil.copyfile(MEDIA_DIR / clip, root / "inbox" / camera / clip)
            await _wait_until_processed(base_url, len(CLIPS))
            yield Service(base_url)


async def _wait_until_processed(base_url: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": API_KEY}) as client:
        async with asyncio.timeout(30):
            while True:
                items = (await client.get("/api/v1/clips")).json()["items"]
                if len(items) == count and all(item["status"] == "done" for item in items):
                    return
                await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh --test (installs chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()
