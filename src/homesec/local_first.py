"""Local-first: no dependency of HomeSec collects or sends usage data, in any HomeSec process.

`switch_off_telemetry()` runs first in the `homesec` command and in every worker process
(`processes.worker_pool`). The variables are set in `os.environ`, so every child inherits
them, and they override the environment: local-first is a promise, not a default. What each
switch does, as read in the installed packages' sources:

- `ORT_DISABLE_TELEMETRY=1`: ONNX Runtime (>= 1.29) on Linux and macOS otherwise writes a
  persistent device id and an offline event queue under `~/.cache/Microsoft/DeveloperTools/`
  and uploads usage events to Microsoft (mobile.events.data.microsoft.com). It reads the
  variable once, when it is imported: hence first thing, and workers inherit it.
- `onnxruntime.disable_telemetry_events()`: the same for official Windows builds (events
  through the operating system's telemetry); a switch of each process, not of the
  environment.
- `OTEL_SDK_DISABLED=true`: FastAPI has built-in OpenTelemetry (opentelemetry-api) and adds
  OTLP exporters from the `OTEL_EXPORTER_OTLP_*` variables when
  `FASTAPI_OTEL_AUTO_CONFIGURE=true`; it skips that when this is set, and an OpenTelemetry
  SDK installed next to HomeSec then records nothing.
- `AWS_CSM_ENABLED=false`: botocore's client-side monitoring sends a UDP datagram per S3
  call (to `AWS_CSM_HOST`:`AWS_CSM_PORT`, 127.0.0.1:31000 by default) when `csm_enabled` is
  set in `~/.aws/config`; the environment wins over that file.
- `DO_NOT_TRACK=1`: the common convention (consoledonottrack.com), for third-party plugins.

The other dependencies (uvicorn, Starlette, httpx, PyAV, OpenCV, apprise, dropbox, boto3,
aiomqtt, asyncpg, SQLAlchemy, pyftpdlib, prometheus-client) collect nothing of the kind.
"""

from __future__ import annotations

import os

_SWITCHES = {
    "ORT_DISABLE_TELEMETRY": "1",
    "OTEL_SDK_DISABLED": "true",
    "AWS_CSM_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def switch_off_telemetry() -> None:
    """Switch off every usage-data collection of HomeSec's dependencies, in this process."""
    os.environ.update(_SWITCHES)
    import onnxruntime  # not before: it reads ORT_DISABLE_TELEMETRY when it is imported

    onnxruntime.disable_telemetry_events()
