"""The web UI in headless Chromium: the search box, the camera page and deleting a clip (a
module of its own: deleting changes the service the other UI tests share).

Each test saves a screenshot of its page under test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page

from tests.browser.conftest import API_KEY, ARTIFACTS, Service

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, service: Service) -> AsyncIterator[Page]:
    """A logged-in tab on the event list."""
    context = await browser.new_context(
        base_url=service.base_url, viewport={"width": 1280, "height": 900}
    )
    tab = await context.new_page()
    await tab.goto("/ui/")
    await tab.wait_for_url("**/ui/login?next=*")
    await tab.fill("input[name=api_key]", API_KEY)
    await tab.click("form.login button[type=submit]")
    await tab.wait_for_url("**/ui/")
    yield tab
    await context.close()


async def _cards(tab: Page) -> list[str]:
    return await tab.locator(".clip-card .meta strong").all_inner_texts()


async def test_the_search_box_finds_the_clip_and_marks_the_words(page: Page) -> None:
    # Given the event list with both clips
    assert sorted(await _cards(page)) == ["backyard", "front_door"]

    # When "walking to the door" is searched
    await page.fill("input[name=q]", "walking to the door")
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url("**/ui/?*q=walking*")
    await page.screenshot(path=ARTIFACTS / "search.png", full_page=True)

    # Then only the front door's clip is listed, its matched words marked
    assert await _cards(page) == ["front_door"]
    marked = await page.locator(".clip-card .summary mark").all_inner_texts()
    assert marked == ["walks", "door"]
    assert await page.input_value("input[name=q]") == "walking to the door"


async def test_the_camera_page_shows_the_days_clips_on_its_timeline(page: Page) -> None:
    # Given a logged-in browser, recording what the page's policy refuses
    refusals: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refusals.append(message.text)

    page.on("console", record)

    # When the front door is opened from the system page
    await page.goto("/ui/system")
    await page.click("#cameras >> text=front_door")
    await page.wait_for_url("**/ui/cameras/front_door")
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=ARTIFACTS / "camera.png", full_page=True)

    # Then its clip is on the day's timeline (placed by the script, near "now") and listed
    mark = page.locator(".day-timeline .mark")
    assert await mark.count() == 1
    left = await mark.evaluate("node => parseFloat(node.style.left)")
    assert 99 <= left <= 100
    assert await page.locator(".clip-card").count() == 1
    assert "healthy" in await page.locator("h1").inner_text()
    assert refusals == []


async def test_a_clip_is_deleted_once_the_user_confirms(page: Page) -> None:
    # Given the backyard clip's page
    await page.goto("/ui/clips/backyard_1700000100.mp4")
    button = page.locator("details.delete button")
    hidden_at_first = not await button.is_visible()

    # When the user opens "Delete this clip…" and confirms
    await page.click("details.delete summary")
    await page.screenshot(path=ARTIFACTS / "delete.png", full_page=True)
    await button.click()
    await page.wait_for_url("**/ui/")

    # Then the confirmation was needed, and the event list no longer has the clip
    assert hidden_at_first
    assert await _cards(page) == ["front_door"]
    gone = await page.goto("/ui/clips/backyard_1700000100.mp4")
    assert gone is not None and gone.status == 404
