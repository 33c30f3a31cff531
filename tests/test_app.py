"""The service's lifecycle: every part started, and every part closed, whatever fails."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from homesec.app import HomeSecApp
from homesec.errors import StartupError
from tests.fakes.builders import make_config
from tests.fakes.plugins import RecordingNotifier
from tests.fakes.running import running_app


def _sinks(app: HomeSecApp) -> dict[str, RecordingNotifier]:
    sinks = {}
    for notifier in app.components.notifiers:
        assert isinstance(notifier, RecordingNotifier)
        sinks[notifier.name] = notifier
    return sinks


def _recorder(name: str, **config: object) -> dict[str, object]:
    return {"backend": "fake_recorder", "config": {"name": name, **config}}


async def test_a_plugin_that_fails_to_close_is_logged_and_the_others_still_close(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a running service with two sinks, the first of which fails to close
    caplog.set_level(logging.INFO)
    config = make_config(
        tmp_path, notifiers=[_recorder("stuck", fail_close=True), _recorder("fine")]
    )

    # When the service shuts down
    async with running_app(config) as app:
        sinks = _sinks(app)

    # Then the other sink was closed too, the failure is logged with the sink's name, and
    # the shutdown went on to its end
    assert sinks["fine"].closed
    [failure] = [r for r in caplog.records if "did not close cleanly" in r.getMessage()]
    assert failure.levelno == logging.ERROR
    assert failure.getMessage() == "Notifier stuck did not close cleanly"
    assert failure.exc_info is not None
    assert "Shutdown complete" in [r.getMessage() for r in caplog.records]


async def test_parts_started_before_a_start_that_failed_are_closed(tmp_path: Path) -> None:
    # Given a service whose second sink refuses to start
    config = make_config(
        tmp_path, notifiers=[_recorder("first"), _recorder("refuses", fail_start=True)]
    )
    app = HomeSecApp(config)
    sinks = _sinks(app)

    # When the service is run
    with pytest.raises(StartupError, match="cannot start: sink refused to start"):
        await app.run(asyncio.Event())

    # Then the sink started before it is closed, and so is the one that failed to start,
    # while no camera was ever started
    assert sinks["first"].closed
    assert sinks["refuses"].closed
    assert not any(source.is_healthy() for source in app.sources)
