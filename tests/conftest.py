"""Shared fixtures: real services (Postgres, Mosquitto) and the shared media and models."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from homesec.local_first import switch_off_telemetry

# The test process runs the detector itself: it must not send usage data either.
switch_off_telemetry()

pytest_plugins = [
    "tests.services.shared_files",
    "tests.services.postgres",
    "tests.services.mosquitto",
    "tests.services.openai_server",
    "tests.services.smtp_server",
    "tests.services.http_receiver",
    "tests.services.dropbox_fake",
    "tests.services.s3_server",
    "tests.services.rtsp_server",
    "tests.services.frigate_fake",
]


# Every test in these folders takes seconds: it runs HomeSec, a browser or a build.
SLOW_FOLDERS = [Path(__file__).parent / name for name in ("e2e", "browser", "packaging")]
# A test that starts a server of its own waits for it; a camera streams footage in real time.
SLOW_FIXTURES = {"throwaway_postgres", "make_throwaway_broker", "make_rtsp_camera"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `slow` the tests of SLOW_FOLDERS and those using SLOW_FIXTURES; other modules and
    tests that take seconds carry the mark themselves. `make test-fast` leaves them out."""
    for item in items:
        in_slow_folder = any(item.path.is_relative_to(folder) for folder in SLOW_FOLDERS)
        starts_a_server = not SLOW_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        if in_slow_folder or starts_a_server:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """CLI tests configure the root logger onto a captured stream: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
