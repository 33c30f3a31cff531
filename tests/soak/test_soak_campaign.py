"""The soak and fault campaign, CI-short: about three minutes of load, every fault once."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.soak.campaign import CampaignSettings, run_campaign
from bench.soak.faults import FaultKind
from bench.soak.report import render

pytestmark = pytest.mark.slow

# Three minutes of load, the drain (generous on a loaded 2-core machine), start and stop.
_TIMEOUT_S = 1500


@pytest.mark.timeout(_TIMEOUT_S)
async def test_three_minutes_of_load_and_every_fault_lose_no_clip_grow_nothing_leak_nothing(
    tmp_path: Path,
) -> None:
    # Given the real `homesec run` with two watched folders, an FTP camera and an RTSP camera,
    # real Postgres, Mosquitto, S3 behind a faulty proxy and a scripted VLM, a small disk cap
    settings = CampaignSettings(duration_s=180, work_dir=tmp_path, drain_timeout_s=600)

    # When clips keep coming for three minutes while every kind of fault comes and goes
    result = await run_campaign(settings)

    # Then every fault was injected and every produced clip is proven from the outside (a
    # clip with a person is alerted, also while the VLM is down)
    report = render(result)
    assert result.faults.kinds() == set(FaultKind), report
    assert len(result.outcome.verdicts) >= 30, report
    assert result.outcome.lost == 0, report
    # And the spool was held to its cap through the VLM outage (clips in error are pruned
    # once in storage), no local copy left before its upload, no resource grew, and nothing
    # HomeSec started outlived its SIGKILLs or its stop
    assert result.spool.held, report
    assert result.pruned > 0, report
    assert result.deleted_early == [], report
    assert result.growth == [], report
    assert result.leftover_processes == [], report
    assert result.exit_code == 0, report
    # And no configured secret appeared in a log line, an API answer or an MQTT message
    assert result.leaks == [], report
