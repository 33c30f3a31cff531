"""Actions on a clip: delete it for good (refused while it is processed), analyse it again,
and download it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from homesec.models.clip import analysis_name, snapshot_name
from homesec.models.enums import EventType, StageName, StageStatus
from homesec.models.queries import ClipFilter
from homesec.models.state import ClipStateData, StageLog
from tests.api.conftest import ApiHarness
from tests.api.seeding import clip_state

CLIP_ID = "front_door_1700000000.mp4"


async def _stored_clip(api: ApiHarness, media: Path) -> dict[str, Path]:
    """A done clip with its video and snapshot in the spool and its three objects in storage."""
    api.spool.mkdir(parents=True, exist_ok=True)
    local = api.spool / CLIP_ID
    shutil.copyfile(media, local)
    snapshot = local.with_name(snapshot_name(CLIP_ID))
    snapshot.write_bytes(b"\xff\xd8\xff\xd9")
    state = clip_state("front_door", 1_700_000_000, local_path=str(local))
    stored = {}
    for name, source in ((CLIP_ID, local), (snapshot_name(CLIP_ID), snapshot)):
        outcome = await api.storage.put(source, f"front_door/{name}")
        stored[name] = Path(outcome.storage_uri.removeprefix("file://"))
    outcome = await api.storage.put_json({"summary": "x"}, f"front_door/{analysis_name(CLIP_ID)}")
    stored[analysis_name(CLIP_ID)] = Path(outcome.storage_uri.removeprefix("file://"))
    state.storage_uri = f"file://{stored[CLIP_ID]}"
    assert await api.repository.save(state)
    return {"local": local, "snapshot": snapshot, **stored}


async def test_deleting_a_clip_removes_it_everywhere_and_records_why(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a done clip, on local disk and in storage
    files = await _stored_clip(api, person_clip)
    assert all(path.is_file() for path in files.values())

    # When it is deleted through the API
    response = await api.client.delete(f"/api/v1/clips/{CLIP_ID}")

    # Then every file of it is gone, the API knows it no more, search does not find it, and
    # its events end with the delete
    assert response.status_code == 204, response.text
    assert [path for path in files.values() if path.exists()] == []
    assert (await api.client.get(f"/api/v1/clips/{CLIP_ID}")).status_code == 404
    page = await api.repository.list_clips(ClipFilter(q="front_door"), limit=10)
    assert page is not None and page.items == []
    events = await api.repository.list_events(CLIP_ID)
    assert events and events[-1].event_type == EventType.CLIP_DELETED
    again = await api.client.delete(f"/api/v1/clips/{CLIP_ID}")
    assert again.status_code == 404


async def test_a_clip_still_being_processed_is_not_deleted(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a clip whose VLM stage is running
    files = await _stored_clip(api, person_clip)
    state = await api.repository.get(CLIP_ID)
    assert state is not None
    state.stages[StageName.VLM] = StageLog(status=StageStatus.RUNNING, attempts=1)
    assert await api.repository.save(state)

    # When it is deleted
    response = await api.client.delete(f"/api/v1/clips/{CLIP_ID}")

    # Then it is refused (409, saying why) and nothing is gone
    assert response.status_code == 409 and "still being processed" in response.text
    assert all(path.is_file() for path in files.values())
    assert await api.repository.get(CLIP_ID) is not None


async def test_a_storage_that_cannot_delete_leaves_everything_for_another_try(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a done clip whose analysis object storage cannot delete (a folder in its place)
    files = await _stored_clip(api, person_clip)
    analysis = files[analysis_name(CLIP_ID)]
    analysis.unlink()
    analysis.mkdir()

    # When it is deleted, and again once storage can
    failed = await api.client.delete(f"/api/v1/clips/{CLIP_ID}")
    kept = await api.repository.get(CLIP_ID)
    local_kept = files["local"].is_file()
    analysis.rmdir()
    retried = await api.client.delete(f"/api/v1/clips/{CLIP_ID}")

    # Then the first is a 502 that keeps the state and the local copy; the second deletes it
    assert failed.status_code == 502 and "storage did not delete it" in failed.text
    assert str(analysis) not in failed.text  # no server path leaves the machine
    assert kept is not None and local_kept
    assert retried.status_code == 204
    assert await api.repository.get(CLIP_ID) is None


async def test_the_ui_deletes_a_clip_after_it_is_confirmed(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a done clip and its page
    await _stored_clip(api, person_clip)
    page = await api.client.get(f"/ui/clips/{CLIP_ID}")

    # When its delete form (behind "Delete this clip…") is sent
    response = await api.client.post(f"/ui/clips/{CLIP_ID}/delete")

    # Then the browser goes back to the event list, and the clip is gone
    assert "<summary>Delete this clip…</summary>" in page.text
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    assert await api.repository.get(CLIP_ID) is None


async def test_a_clip_downloads_as_an_attachment_when_asked(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a done clip
    files = await _stored_clip(api, person_clip)

    # When its video is asked for to watch, and to download
    watch = await api.client.get(f"/api/v1/clips/{CLIP_ID}/video")
    download = await api.client.get(f"/api/v1/clips/{CLIP_ID}/video", params={"download": "true"})

    # Then both are the whole file; only the second is an attachment
    assert watch.headers["content-disposition"].startswith("inline")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.content == files["local"].read_bytes()


async def test_a_clip_is_analysed_again_with_todays_settings_without_a_new_alert(
    api: ApiHarness, person_clip: Path
) -> None:
    # Given a done clip analysed long ago (another summary, an alert sent)
    await _stored_clip(api, person_clip)
    old = await api.repository.get(CLIP_ID)
    assert old is not None and old.analysis_result is not None
    old.analysis_result.summary = "An old summary."
    assert await api.repository.save(old)

    # When it is analysed again through the API, and the UI asks again while it runs
    response = await api.client.post(f"/api/v1/clips/{CLIP_ID}/reanalyse")
    busy = await api.client.post(f"/api/v1/clips/{CLIP_ID}/reanalyse")
    state = await _settled(api)

    # Then it is accepted (202), a second request meanwhile is refused, and the clip gets
    # the new analysis and decision, with no alert sent and the request on record
    assert response.status_code == 202, response.text
    assert busy.status_code == 409
    assert state.analysis_result is not None
    assert state.analysis_result.summary == "A person walks to the door."  # the fake VLM's
    assert state.reanalysed_at is not None and state.alert_decision is not None
    assert state.stage(StageName.NOTIFY).status == StageStatus.SKIPPED
    events = [e.event_type for e in await api.repository.list_events(CLIP_ID)]
    assert EventType.REANALYSIS_REQUESTED in events
    assert EventType.DETECTION_SENT not in events


async def _settled(api: ApiHarness) -> ClipStateData:
    async with asyncio.timeout(20):
        while True:
            state = await api.repository.get(CLIP_ID)
            if state is not None and state.is_settled and state.analysis_result is not None:
                return state
            await asyncio.sleep(0.05)
