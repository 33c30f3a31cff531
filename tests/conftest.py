"""Shared fixtures: real services (Postgres, Mosquitto) and the shared media and models."""

import logging
from collections.abc import Iterator

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
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """CLI tests configure the root logger onto a captured stream: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
