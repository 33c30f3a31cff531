"""Storage down for a while, then back: every clip uploaded exactly once, none lost early."""

from __future__ import annotations

import asyncio
from pathlib import Path

import tests.fakes.plugins  # noqa: F401
from homesec.models.enums import ClipStatus, StageName, StageStatus
from tests.e2e.helpers import drop_clip
from tests.fakes.builders import config_dict, make_config, switchable_storage
from tests.fakes.plugins import read_alert_log
from tests.fakes.running import running_app


async def test_clips_recorded_during_a_storage_outage_are_uploaded_once_when_it_ends(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given the service with a storage that is down, and a retention cap of zero bytes
    outage = tmp_path / "storage-down"
    outage.touch()
    alerts = tmp_path / "alerts.jsonl"
    config = make_config(
        tmp_path,
        storage=switchable_storage(tmp_path, outage),
        notifiers=[{"backend": "fake_recorder", "config": {"log_file": str(alerts)}}],
        retention={"max_local_size_bytes": 0},
        retry={"max_attempts": 2, "backoff_s": 0.05, "upload_retry_max_backoff_s": 0.3},
    )
    watch = Path(config_dict(tmp_path)["cameras"][0]["source"]["config"]["watch_dir"])
    names = [f"front_door_{1700000100 + i}.mp4" for i in range(3)]
    async with running_app(config) as app:
        repository = app.components.repository
        # When three clips arrive during the outage
        for name in names:
            drop_clip(person_clip, watch, name)
        while len(read_alert_log(alerts)) < 3:
            await asyncio.sleep(0.05)
        during = [await repository.get(name) for name in names]
        kept_during_outage = all((watch / name).exists() for name in names)

        # And the storage comes back
        outage.unlink()
        for name in names:
            while (state := await repository.get(name)) is None or state.status != ClipStatus.DONE:
                await asyncio.sleep(0.05)

    # Then the alerts said the upload failed, the clips waited on disk, the state showed the
    # upload pending, and each clip was uploaded exactly once after the outage
    assert all(alert["upload_failed"] for alert in read_alert_log(alerts))
    assert kept_during_outage
    waiting = (StageStatus.PENDING, StageStatus.RUNNING)  # between tries, or in one
    uploads = [state.stages[StageName.UPLOAD] for state in during if state is not None]
    assert len(uploads) == 3
    assert all(log.status in waiting and log.last_error for log in uploads)
    puts = (tmp_path / "storage" / "puts.log").read_text().split()
    assert sorted(puts) == sorted(f"front_door/{name}" for name in names)
    assert sorted(p.name for p in (tmp_path / "storage" / "front_door").glob("*.mp4")) == names
