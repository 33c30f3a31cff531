"""The web UI in headless Chromium: log in, the event list, playback, filters, system, phone.

Each test saves a screenshot of its page under test-artifacts/browser/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    StorageState,
    ViewportSize,
)

from tests.browser.conftest import API_KEY, ARTIFACTS, Service

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def signed_in(browser: Browser, service: Service) -> StorageState:
    """A session made once through the login form, for the tests that start logged in."""
    context = await browser.new_context(base_url=service.base_url)
    await _log_in(await context.new_page())
    state = await context.storage_state()
    await context.close()
    return state


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, service: Service, signed_in: StorageState) -> AsyncIterator[Page]:
    """A fresh browser context with the session cookie, on the event list."""
    context = await browser.new_context(
        base_url=service.base_url, viewport={"width": 1280, "height": 900}, storage_state=signed_in
    )
    tab = await context.new_page()
    await tab.goto("/ui/")
    yield tab
    await context.close()


async def _log_in(tab: Page) -> None:
    await tab.goto("/ui/")
    await tab.wait_for_url("**/ui/login?next=*")
    await tab.fill("input[name=api_key]", API_KEY)
    await tab.click("form.login button[type=submit]")
    await tab.wait_for_url("**/ui/")


async def _cards(tab: Page) -> list[str]:
    return await tab.locator(".clip-card .meta strong").all_inner_texts()


async def test_the_login_form_is_shown_to_a_browser_without_a_session(
    browser: Browser, service: Service
) -> None:
    # Given a browser that never logged in
    context = await browser.new_context(base_url=service.base_url)
    tab = await context.new_page()

    # When it opens the event list, and logs in with a wrong key
    await tab.goto("/ui/")
    await tab.fill("input[name=api_key]", "not-the-key")
    await tab.click("form.login button[type=submit]")
    error = await tab.locator(".error").inner_text()
    await tab.screenshot(path=ARTIFACTS / "login.png")
    await context.close()

    # Then it is on the login form, told the key is wrong
    assert "/ui/login" in tab.url
    assert error == "Wrong API key"


async def test_the_event_list_shows_the_processed_clips(page: Page) -> None:
    # Given a logged-in browser on the event list
    # When the page has loaded its snapshots
    await page.wait_for_load_state("networkidle")
    front_door = page.locator(".clip-card", has_text="front_door")
    snapshot_width = await front_door.locator("img").evaluate("img => img.naturalWidth")
    await page.screenshot(path=ARTIFACTS / "events.png", full_page=True)

    # Then both shared clips are listed, the front door one with its VLM summary and snapshot
    assert sorted(await _cards(page)) == ["backyard", "front_door"]
    assert "A person walks to the door." in await front_door.inner_text()
    assert "high risk" in await front_door.inner_text()
    assert snapshot_width > 0
    backyard = page.locator(".clip-card", has_text="backyard")
    assert "nothing detected" in await backyard.inner_text()


async def test_clicking_a_clip_plays_its_video(page: Page) -> None:
    # Given the event list, recording the video responses
    video_statuses: list[int] = []

    def record(response: Response) -> None:
        if "/video" in response.url:
            video_statuses.append(response.status)

    page.on("response", record)

    # When the front door clip is clicked and its player started
    await page.locator(".clip-card", has_text="front_door").click()
    await page.wait_for_url("**/ui/clips/front_door_1700000000.mp4")
    playback = await page.evaluate(
        """async () => {
            const video = document.getElementById("player");
            if (video.readyState < 1) {
                await new Promise((resolve, reject) => {
                    video.addEventListener("loadedmetadata", resolve, {once: true});
                    video.addEventListener("error", () => reject(video.error), {once: true});
                });
            }
            await video.play();
            const start = video.currentTime;
            await new Promise((resolve) => setTimeout(resolve, 1200));
            video.pause();
            return {duration: video.duration, start, now: video.currentTime,
                    readyState: video.readyState};
        }"""
    )
    await page.screenshot(path=ARTIFACTS / "clip.png", full_page=True)

    # Then the 20 s clip plays (time advances), streamed with range requests (206)
    assert playback["duration"] == pytest.approx(20.0, abs=0.5)
    assert playback["now"] > playback["start"]
    assert playback["readyState"] >= 2
    assert 206 in video_statuses
    assert "person" in await page.locator("#detections").inner_text()


async def test_the_clip_page_draws_the_zones_and_tells_a_clicked_point(page: Page) -> None:
    # Given the front door clip's page (its camera has one zone, the porch)
    await page.goto("/ui/clips/front_door_1700000000.mp4")
    picture = page.locator("#zones")
    await page.wait_for_function("() => document.querySelector('#zones img').naturalWidth > 0")

    # When the user clicks a quarter across and three quarters down the snapshot
    box = await picture.bounding_box()
    assert box is not None
    await picture.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.75})
    await page.screenshot(path=ARTIFACTS / "zones.png", full_page=True)

    # Then the porch is drawn over the snapshot and the point reads as a zone writes it
    zones = page.locator("#zones polygon.zone")
    assert await zones.count() == 1
    assert await zones.first.get_attribute("data-zone") == "porch"
    box = await picture.bounding_box()  # where the click scrolled it to
    assert box is not None
    overlay = await page.locator("#zones svg").bounding_box()
    assert overlay is not None and overlay == pytest.approx(box, abs=1)
    drawn = await zones.first.bounding_box()
    assert drawn is not None  # the stroke widens it a little
    assert drawn["x"] + drawn["width"] / 2 == pytest.approx(box["x"] + box["width"] * 0.75, abs=3)
    assert drawn["width"] == pytest.approx(box["width"] / 2, rel=0.05)
    x, y = json.loads(await page.locator("#zone-point").inner_text())
    assert (x, y) == (pytest.approx(0.25, abs=0.002), pytest.approx(0.75, abs=0.002))


async def test_filters_narrow_the_list(page: Page) -> None:
    # Given the event list with both clips
    assert len(await _cards(page)) == 2

    # When the risk filter is set to high, then the camera filter to the backyard instead
    await page.select_option("select[name=risk_level]", "high")
    await page.wait_for_url("**/ui/?*risk_level=high*")
    high_risk = await _cards(page)
    await page.screenshot(path=ARTIFACTS / "events-filtered.png", full_page=True)
    await page.select_option("select[name=risk_level]", "")
    await page.wait_for_url(lambda url: "risk_level" not in url)
    await page.select_option("select[name=camera]", "backyard")
    await page.wait_for_url("**/ui/?camera=backyard*")
    backyard = await _cards(page)

    # Then each filter leaves only the matching clip
    assert high_risk == ["front_door"]
    assert backyard == ["backyard"]


async def test_the_system_page_shows_cameras_and_components(page: Page) -> None:
    # Given a logged-in browser
    # When the system page is opened
    await page.click("nav >> text=System")
    await page.wait_for_url("**/ui/system")
    cameras = await page.locator("#cameras tbody tr").all_inner_texts()
    components = await page.locator("#components tbody tr").all_inner_texts()
    await page.screenshot(path=ARTIFACTS / "system.png", full_page=True)

    # Then each camera and component is listed with its health, and clip counts are there
    assert [row.split("\t")[0] for row in cameras] == ["front_door", "backyard"]
    assert all("healthy" in row for row in cameras)
    names = [row.split("\t")[0] for row in components]
    assert names == ["pipeline", "database", "storage", "spool"]
    assert await page.locator("#overall").inner_text() == "healthy"


async def test_the_event_list_fits_a_phone_screen(browser: Browser, service: Service) -> None:
    # Given a phone-sized browser, logged in
    context = await browser.new_context(
        base_url=service.base_url, viewport=PHONE, is_mobile=True, has_touch=True
    )
    tab = await context.new_page()
    await _log_in(tab)

    # When the event list and a clip page are shown
    await tab.wait_for_load_state("networkidle")
    list_width = await tab.evaluate("document.documentElement.scrollWidth")
    await tab.screenshot(path=ARTIFACTS / "events-phone.png", full_page=True)
    await tab.locator(".clip-card", has_text="front_door").click()
    await tab.wait_for_url("**/ui/clips/*")
    clip_width = await tab.evaluate("document.documentElement.scrollWidth")
    await tab.screenshot(path=ARTIFACTS / "clip-phone.png", full_page=True)
    await context.close()

    # Then nothing scrolls sideways
    assert list_width <= PHONE["width"]
    assert clip_width <= PHONE["width"]


async def test_every_page_works_under_the_content_security_policy(page: Page) -> None:
    # Given a logged-in browser, recording what the page's policy refuses
    refusals: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refusals.append(message.text)

    page.on("console", record)

    # When the event list, a clip, the system page and the login form are opened
    policies = {}
    for path in ("/ui/", "/ui/clips/front_door_1700000000.mp4", "/ui/login", "/ui/system"):
        response = await page.goto(path)
        assert response is not None
        await page.wait_for_load_state("networkidle")
        policies[path] = response.headers.get("content-security-policy", "")
    await page.screenshot(path=ARTIFACTS / "system-bars.png", full_page=True)
    bar_widths = await page.locator(".bars .bar rect").evaluate_all(
        "rects => rects.map(rect => rect.getBoundingClientRect().width)"
    )
    local_times = await page.locator("time[title]").count()

    # Then every page came with a policy that allows no inline code and refused nothing; the
    # script ran (times shown in local time) and the day bars are drawn without inline styles
    assert all("script-src 'self'" in policy for policy in policies.values()), policies
    assert refusals == []
    assert local_times > 0
    assert bar_widths and max(bar_widths) > 100


async def test_logging_out_ends_the_session_for_a_copy_of_the_cookie_too(
    browser: Browser, service: Service
) -> None:
    # Given a browser that logged in, and a second one holding a copy of its cookie
    first = await browser.new_context(base_url=service.base_url)
    tab = await first.new_page()
    await _log_in(tab)
    copy = await browser.new_context(
        base_url=service.base_url, storage_state=await first.storage_state()
    )
    copy_tab = await copy.new_page()
    await copy_tab.goto("/ui/system")
    opened_before = copy_tab.url

    # When the first browser logs out, and the copy opens a page again
    await tab.click("nav >> text=Log out")
    await tab.wait_for_url("**/ui/login")
    await copy_tab.goto("/ui/system")
    await copy_tab.screenshot(path=ARTIFACTS / "after-logout.png")
    opened_after = copy_tab.url
    await first.close()
    await copy.close()

    # Then the copy worked before the logout and is sent to the login form after it
    assert opened_before.endswith("/ui/system")
    assert "/ui/login?next=" in opened_after
