"""The web UI's pages as HTML (server side): paging, filter errors, unknown clips, the root."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.api.conftest import ServeApi
from tests.api.seeding import clip_state, insert_states, spread
from tests.fakes.builders import clip_from


async def test_the_event_list_pages_through_older_clips(serve_sqlite_api: ServeApi) -> None:
    # Given 60 clips and the UI with auth off
    async with serve_sqlite_api(api_key=None) as api:
        states = [clip_state("front_door", 1_700_000_000 + n) for n in range(60)]
        await insert_states(api.config.state_store, spread(states))

        # When the event list is opened, then its "Older clips" link followed
        first = await api.client.get("/ui/", params={"camera": "front_door"})
        more = re.search(r'href="(/ui/\?[^"]+)">Older clips', first.text)
        assert more is not None
        second = await api.client.get(more.group(1).replace("&amp;", "&"))

    # Then the first page shows 50 clips, the second the other 10, the filter kept
    assert first.status_code == 200 and first.text.count('class="clip-card"') == 50
    assert "camera=front_door" in more.group(1)
    assert second.text.count('class="clip-card"') == 10
    assert "Older clips" not in second.text


async def test_an_invalid_filter_is_explained_on_the_page(serve_sqlite_api: ServeApi) -> None:
    # Given the UI with auth off
    async with serve_sqlite_api(api_key=None) as api:
        # When the list is asked for with a risk level that does not exist
        response = await api.client.get("/ui/", params={"risk_level": "extreme"})

    # Then the page says what is wrong instead of failing
    assert response.status_code == 422
    assert 'role="alert">risk_level:' in response.text


async def test_an_unknown_clip_page_is_a_404_page(serve_sqlite_api: ServeApi) -> None:
    # Given the UI with auth off
    async with serve_sqlite_api(api_key=None) as api:
        # When a clip that does not exist is opened, and the site root
        clip = await api.client.get("/ui/clips/nobody_1700000000.mp4")
        root = await api.client.get("/")

    # Then the clip page is a 404 page and the root leads to the event list
    assert clip.status_code == 404 and "no clip nobody_1700000000.mp4" in clip.text
    assert root.status_code == 303 and root.headers["location"] == "/ui/"


async def test_the_login_form_is_skipped_when_auth_is_off(serve_sqlite_api: ServeApi) -> None:
    # Given the UI with auth off
    async with serve_sqlite_api(api_key=None) as api:
        # When the login form is asked for
        response = await api.client.get("/ui/login")

    # Then the browser goes straight to the events
    assert response.status_code == 303 and response.headers["location"] == "/ui/"


async def test_a_clip_that_needs_review_has_its_badge_filter_and_mark_reviewed_button(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given a clip the VLM asks a person to review, and the UI with auth off
    async with serve_sqlite_api(api_key=None) as api:
        state = clip_state("front_door", 1_700_000_000)
        assert state.analysis_result is not None
        state.analysis_result.requires_review = True
        assert await api.repository.save(state)
        page = f"/ui/clips/{state.clip_id}"

        # When the list is filtered for it, its page opened, and its button pressed
        listed = await api.client.get("/ui/", params={"needs_review": "true"})
        before = await api.client.get(page)
        pressed = await api.client.post(f"{page}/reviewed")
        after = await api.client.get(page)
        still = await api.client.get("/ui/", params={"needs_review": "true"})

    # Then it is listed with its badge, its page offers the button, and once pressed the
    # browser is back on the page, without badge or button, and the filter lists nothing
    assert listed.text.count('class="clip-card"') == 1 and "needs review" in listed.text
    assert "Mark reviewed" in before.text
    assert pressed.status_code == 303 and pressed.headers["location"] == page
    assert "Mark reviewed" not in after.text and "needs review" not in after.text
    assert still.text.count('class="clip-card"') == 0


async def test_the_search_box_finds_clips_and_marks_the_words_it_matched(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given a clip whose summary mentions deliveries, and one that does not
    parcel = clip_state("front_door", 1_700_000_000, activity="delivery")
    other = clip_state("front_door", 1_700_000_100)
    assert parcel.analysis_result is not None and other.analysis_result is not None
    parcel.analysis_result.summary = "Two deliveries <b>at</b> the door."
    other.analysis_result.summary = "A person knocks."
    async with serve_sqlite_api(api_key=None) as api:
        await insert_states(api.config.state_store, spread([parcel, other]))

        # When "delivery" is searched in the UI, and in the API
        page = await api.client.get("/ui/", params={"q": "delivery"})
        listed = await api.client.get("/api/v1/clips", params={"q": "delivery"})

    # Then only that clip is listed, its matched word marked, its markup escaped
    assert page.status_code == 200 and page.text.count('class="clip-card"') == 1
    assert "Two <mark>deliveries</mark> &lt;b&gt;at&lt;/b&gt; the door." in page.text
    assert 'name="q" value="delivery"' in page.text
    assert [item["clip_id"] for item in listed.json()["items"]] == [parcel.clip_id]


async def test_a_camera_page_shows_its_health_and_its_clips_of_the_day(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given a camera (a watched folder: no live picture) with a clip received just now
    async with serve_sqlite_api(api_key=None) as api:
        state = clip_state("front_door", 1_700_000_000)
        await insert_states(api.config.state_store, [(state, datetime.now(UTC))])

        # When its page, its live picture, and an unknown camera's page are asked for
        page = await api.client.get("/ui/cameras/front_door")
        live = await api.client.get("/api/v1/cameras/front_door/live.jpg")
        unknown = await api.client.get("/ui/cameras/garage")

    # Then the page has its health, a mark on the day's timeline and the clip's card; a
    # camera without a live view has no picture (404, and none on the page)
    assert page.status_code == 200
    assert "<h1>front_door" in page.text
    assert page.text.count('class="mark alerted"') == 1 and 'data-left="' in page.text
    assert page.text.count('class="clip-card"') == 1
    assert 'id="live"' not in page.text
    assert live.status_code == 404 and "no live picture" in live.text
    assert unknown.status_code == 404


async def test_the_clip_page_says_the_mode_its_decision_was_made_in(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given a clip decided in mode away
    state = clip_state("front_door", 1_700_000_000)
    assert state.alert_decision is not None
    state.alert_decision.mode = "away"
    async with serve_sqlite_api(api_key=None) as api:
        await insert_states(api.config.state_store, spread([state]))

        # When its page is opened
        page = await api.client.get(f"/ui/clips/{state.clip_id}")

    # Then the decision names the mode
    assert ", in mode away</p>" in page.text


async def test_the_system_page_shows_each_vlms_calls_and_failures(
    serve_sqlite_api: ServeApi, person_clip: Path
) -> None:
    # Given a first VLM that fails and a fallback that answers, after one clip
    vlm = {
        "backend": "fake_vlm",
        "name": "local",
        "config": {"fail": True},
        "fallbacks": [{"name": "cloud", "backend": "fake_vlm"}],
    }
    async with serve_sqlite_api(api_key=None, vlm=vlm) as api:
        pipeline = api.app.state.context.monitor.pipeline
        await pipeline.process(clip_from(person_clip, api.spool))

        # When the system page and the system API are asked
        page = await api.client.get("/ui/system")
        system = (await api.client.get("/api/v1/system")).json()

    # Then both list the two VLMs with their calls and failures
    rows = re.findall(r"<tr><td>(local|cloud)</td><td>(\d+)</td><td>(\d+)</td>", page.text)
    assert rows == [("local", "1", "1"), ("cloud", "1", "0")]
    assert [(v["name"], v["calls"], v["failures"]) for v in system["vlm_providers"]] == [
        ("local", 1, 1),
        ("cloud", 1, 0),
    ]


@pytest.mark.parametrize(
    ("headers", "taken"),
    [
        # What a browser sends when another site's page posts a form here.
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, False),
        ({"Sec-Fetch-Site": "same-site", "Origin": "http://router.homesec"}, False),
        # An older browser without Sec-Fetch-Site still names the other site.
        ({"Origin": "https://evil.example"}, False),
        # The UI's own form (its pages send no referrer, so the Origin is "null").
        ({"Sec-Fetch-Site": "same-origin", "Origin": "null"}, True),
        ({"Origin": "http://homesec"}, True),
        # A script or curl with neither header.
        ({}, True),
    ],
)
async def test_a_form_posted_from_another_site_changes_nothing(
    serve_sqlite_api: ServeApi, headers: dict[str, str], taken: bool
) -> None:
    # Given a clip that waits for review, and the UI with auth off (the default), where a
    # page of any site the user visits could post a form here (mode, alerts, delete...)
    async with serve_sqlite_api(api_key=None) as api:
        state = clip_state("front_door", 1_700_000_000)
        assert state.analysis_result is not None
        state.analysis_result.requires_review = True
        assert await api.repository.save(state)

        # When the "Mark reviewed" form is posted with the browser's headers
        posted = await api.client.post(f"/ui/clips/{state.clip_id}/reviewed", headers=headers)
        stored = await api.repository.get(state.clip_id)

    # Then only a post from the UI itself (or no browser at all) is taken; another site's
    # is refused and the clip still waits for review
    assert stored is not None
    assert stored.needs_review is not taken
    assert posted.status_code == (303 if taken else 403)
