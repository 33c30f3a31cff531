"""Auth: the API key on every route but the probes, signed media URLs, the UI's session."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from homesec.api.signing import Signer, signed_media_links
from homesec.models.config import Config
from homesec.throttle import WRONG_GUESS_LIMIT, GuessThrottle
from tests.api.conftest import API_KEY, ApiHarness, ServeApi, revoked_sessions_file
from tests.api.route_table import (
    ANSWERS_WITHOUT_BODY,
    CLIP_ID,
    STATIC,
    app_routes,
    in_call_order,
    with_clip,
)
from tests.api.seeding import clip_state

# The only routes open without the key, each for a reason.
PUBLIC = {
    ("GET", "/health"): "the liveness probe",
    ("GET", "/api/v1/health"): "the versioned health summary, for probes",
    ("GET", "/"): "a redirect to the UI",
    ("GET", "/ui/login"): "the login form",
    ("POST", "/ui/login"): "the login itself (checks the key)",
    ("POST", "/ui/logout"): "ends the session it is sent with, if any",
}


def _protected(api: FastAPI) -> list[tuple[str, str]]:
    return [route for route in app_routes(api) if route not in PUBLIC]


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_the_route_table_holds_the_public_routes_and_every_kind_of_surface(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given the API with auth on
    async with serve_sqlite_api() as api:
        # When its route table is read
        routes = set(app_routes(api.app))

    # Then every public route exists (the list is not stale), and the protected ones include
    # the JSON API, media, metrics, the schema and the UI pages
    assert set(PUBLIC) <= routes
    assert {
        ("GET", "/api/v1/clips"),
        ("GET", "/api/v1/diagnostics"),
        ("GET", f"/api/v1/clips/{CLIP_ID}/video"),
        ("HEAD", f"/api/v1/clips/{CLIP_ID}/video"),
        ("GET", f"/api/v1/clips/{CLIP_ID}/snapshot"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/ui/"),
        ("GET", f"/ui/clips/{CLIP_ID}"),
        ("GET", "/ui/system"),
    } <= routes - set(PUBLIC)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong-key"}, {"Authorization": "Bearer wrong-key"}],
    ids=["no-key", "wrong-key", "wrong-bearer"],
)
async def test_every_route_but_the_public_ones_refuses_a_missing_or_wrong_key(
    serve_sqlite_api: ServeApi, headers: dict[str, str]
) -> None:
    # Given the API with auth on, tolerant of wrong keys (the walk presents one per route)
    async with serve_sqlite_api(throttle=GuessThrottle("API key", limit=1000)) as api:
        # When every route of its table that is not public is called without the right key
        answers = {
            (method, path): await api.client.request(method, path, headers=headers)
            for method, path in _protected(api.app)
        }
        probe = await api.client.get("/health", headers=headers)

    # Then the API answers 401 asking for a bearer token, a UI page sends to the login form;
    # the probe stays open
    refused = {
        route: (response.status_code, response.headers.get("www-authenticate"))
        for route, response in answers.items()
        if not route[1].startswith("/ui/")
    }
    pages = {
        route: (response.status_code, response.headers["location"].split("?")[0])
        for route, response in answers.items()
        if route[1].startswith("/ui/")
    }
    assert refused == dict.fromkeys(refused, (401, "Bearer"))
    assert pages and pages == dict.fromkeys(pages, (303, "/ui/login"))
    assert probe.status_code in (200, 503)


async def test_the_static_files_hold_no_data_and_refuse_traversal(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given the API with auth on
    async with serve_sqlite_api() as api:
        # When the UI's stylesheet and paths out of the static folder are asked for
        css = await api.client.get(f"{STATIC}/app.css")
        escapes = [
            await api.client.get(f"{STATIC}/{path}")
            # Encoded, so the client sends the dots as they are; each names a real file.
            for path in ("%2e%2e/templates/login.html", "..%2F..%2Fauth.py", "%2e%2e/%2e%2e/app.py")
        ]

    # Then the stylesheet is served and nothing outside the folder is
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert [response.status_code for response in escapes] == [404, 404, 404]


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}]
)
async def test_the_right_key_opens_every_route(
    serve_sqlite_api: ServeApi, person_clip: Path, headers: dict[str, str]
) -> None:
    # Given the API with auth on and one clip with a snapshot
    async with serve_sqlite_api() as api:
        await with_clip(api, person_clip)
        (api.spool / "front_door_1700000000.snapshot.jpg").write_bytes(b"\xff\xd8\xff\xd9")

        # When every protected route of the table is called with the key
        responses = {
            route: await api.client.request(*route, headers=headers)
            for route in in_call_order(_protected(api.app))
        }

    # Then each answers (a route that needs a body says what is wrong with it, past the key)
    expected = {route: ANSWERS_WITHOUT_BODY.get(route, 200) for route in responses}
    assert {route: r.status_code for route, r in responses.items()} == expected


async def test_a_signed_media_url_works_without_the_key_until_it_expires(
    serve_sqlite_api: ServeApi, person_clip: Path
) -> None:
    # Given the API with auth on, a clip, and a clock we control
    clock = FrozenClock(1_000_000.0)
    signer = Signer(b"k" * 32, clock)
    async with serve_sqlite_api(signer=signer) as api:
        await with_clip(api, person_clip)
        links = signed_media_links(signer, CLIP_ID, ttl_s=60)
        url = links.video

        # When the URL is used in time (with its snapshot twin), and again after it expired
        fresh = await api.client.get(url, headers={"Range": "bytes=0-9"})
        snapshot = await api.client.get(links.snapshot)
        clock.now += 61
        expired = await api.client.get(url, headers={"Range": "bytes=0-9"})

    # Then it plays the first time (the snapshot passes auth: there is just none yet), and
    # is forbidden once expired
    assert fresh.status_code == 206
    assert snapshot.status_code == 404
    assert expired.status_code == 403 and expired.json()["detail"] == "signed URL expired"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("sig=", "sig=x"),
        lambda url: url.replace("exp=", "exp=9"),
        lambda url: url.replace(CLIP_ID, "front_door_1700000001.mp4"),
        lambda url: url.replace("exp=", "exp=soon&x="),
    ],
    ids=["signature", "expiry", "other-clip", "garbage-expiry"],
)
async def test_a_tampered_signed_url_is_forbidden(
    serve_sqlite_api: ServeApi, person_clip: Path, tamper: object
) -> None:
    # Given a valid signed video URL
    signer = Signer(b"k" * 32)
    async with serve_sqlite_api(signer=signer) as api:
        await with_clip(api, person_clip)
        await api.repository.save(clip_state("front_door", 1_700_000_001))
        assert callable(tamper)
        url = tamper(signed_media_links(signer, CLIP_ID).video)

        # When any part of it is changed
        response = await api.client.get(url)

    # Then it is forbidden
    assert response.status_code == 403
    assert response.json()["detail"] == "invalid signature"


async def test_a_signature_does_not_open_the_json_api(
    serve_sqlite_api: ServeApi, person_clip: Path
) -> None:
    # Given a valid signed URL's query string
    signer = Signer(b"k" * 32)
    async with serve_sqlite_api(signer=signer) as api:
        await with_clip(api, person_clip)
        query = signed_media_links(signer, CLIP_ID).video.split("?", 1)[1]

        # When it is attached to a JSON route
        response = await api.client.get(f"/api/v1/clips/{CLIP_ID}?{query}")

    # Then the key is still required
    assert response.status_code == 401


async def test_the_ui_login_sets_an_httponly_session_that_opens_the_api(
    serve_sqlite_api: ServeApi,
) -> None:
    async with serve_sqlite_api() as api:
        # Given a browser without a session, sent to the login form
        page = await api.client.get("/ui/system")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=%2Fui%2Fsystem"

        # When it logs in with a wrong key, then with the right one
        wrong = await api.client.post(
            "/ui/login", data={"api_key": "wrong-key", "next": "/ui/system"}
        )
        right = await api.client.post("/ui/login", data={"api_key": API_KEY, "next": "/ui/system"})
        cookie = right.headers["set-cookie"]
        session = right.cookies["homesec_session"]
        api.client.cookies.set("homesec_session", session)
        system_page = await api.client.get("/ui/system")
        clips = await api.client.get("/api/v1/clips")
        logout = await api.client.post("/ui/logout")

    # Then the wrong key is refused; the right one sets an HttpOnly cookie without the key,
    # which opens the pages and the API, and logging out clears it
    assert wrong.status_code == 401 and "homesec_session" not in wrong.headers.get("set-cookie", "")
    assert right.status_code == 303 and right.headers["location"] == "/ui/system"
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and API_KEY not in cookie
    assert system_page.status_code == 200 and clips.status_code == 200
    assert logout.status_code == 303 and 'homesec_session=""' in logout.headers["set-cookie"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
async def test_login_never_redirects_off_site(serve_sqlite_api: ServeApi, target: str) -> None:
    # Given the login form
    async with serve_sqlite_api() as api:
        # When the right key is posted with a `next` pointing elsewhere
        response = await api.client.post("/ui/login", data={"api_key": API_KEY, "next": target})

    # Then the browser is sent to the event list instead
    assert response.status_code == 303 and response.headers["location"] == "/ui/"


async def test_a_forged_session_cookie_is_refused(serve_sqlite_api: ServeApi) -> None:
    # Given a well-formed session cookie signed with another secret (by a service whose key
    # is another one)
    async with serve_sqlite_api(api_key="another-key") as other:
        login = await other.client.post("/ui/login", data={"api_key": "another-key"})
        forged = login.cookies["homesec_session"]
    async with serve_sqlite_api() as api:
        api.client.cookies.set("homesec_session", forged)

        # When the API and a page are called with it
        clips = await api.client.get("/api/v1/clips")
        page = await api.client.get("/ui/")

    # Then neither opens
    assert clips.status_code == 401 and page.status_code == 303


async def test_an_address_that_keeps_guessing_is_locked_out_for_a_minute(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given the API with auth on, and a clock we control for the wrong-key window
    clock = FrozenClock(5_000.0)
    async with serve_sqlite_api(throttle=GuessThrottle("API key", clock=clock)) as api:
        # When one address presents the limit of wrong keys, then the right one, to the API
        # and to the login form
        wrong = [
            await api.client.get("/api/v1/clips", headers={"X-API-Key": f"guess-{n}"})
            for n in range(WRONG_GUESS_LIMIT)
        ]
        locked = await api.client.get("/api/v1/clips", headers={"X-API-Key": API_KEY})
        login = await api.client.post("/ui/login", data={"api_key": API_KEY, "next": "/ui/"})
        # And again once the minute has passed
        clock.now += 61
        later = await api.client.get("/api/v1/clips", headers={"X-API-Key": API_KEY})

    # Then the guesses are refused, then even the right key until the window has passed
    assert [r.status_code for r in wrong] == [401] * WRONG_GUESS_LIMIT
    assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 60
    assert login.status_code == 429 and "Too many wrong keys" in login.text
    assert later.status_code == 200


async def _log_in(api: ApiHarness) -> str:
    """A new UI session from the login form: the value of its cookie."""
    response = await api.client.post("/ui/login", data={"api_key": API_KEY, "next": "/ui/"})
    api.client.cookies.clear()  # each request below presents the cookie it means to
    return response.cookies["homesec_session"]


def _cookie(session: str) -> dict[str, str]:
    return {"Cookie": f"homesec_session={session}"}


async def test_a_copy_of_the_session_cookie_is_refused_after_logout(
    serve_sqlite_api: ServeApi,
) -> None:
    async with serve_sqlite_api() as api:
        # Given a logged-in browser, and a copy of its session cookie
        session = await _log_in(api)
        before = await api.client.get("/api/v1/clips", headers=_cookie(session))

        # When the browser logs out, and the copy is presented afterwards
        logout = await api.client.post("/ui/logout", headers=_cookie(session))
        clips = await api.client.get("/api/v1/clips", headers=_cookie(session))
        page = await api.client.get("/ui/system", headers=_cookie(session))

    # Then the copy opened the API before the logout, and after it the API answers 401 and a
    # page sends to the login form
    assert before.status_code == 200
    assert logout.status_code == 303 and logout.headers["location"] == "/ui/login"
    assert clips.status_code == 401
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login?")


async def test_a_logout_holds_across_a_restart_and_ends_only_its_own_session(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given two browsers logged in, one of which logged out
    async with serve_sqlite_api() as api:
        ended, kept = await _log_in(api), await _log_in(api)
        await api.client.post("/ui/logout", headers=_cookie(ended))

    # When the service is restarted and both session cookies are presented
    async with serve_sqlite_api() as api:
        ended_answer = await api.client.get("/api/v1/clips", headers=_cookie(ended))
        kept_answer = await api.client.get("/api/v1/clips", headers=_cookie(kept))

    # Then the logged-out session stays refused, and the other one still works
    assert ended_answer.status_code == 401
    assert kept_answer.status_code == 200


async def test_an_unreadable_list_of_ended_sessions_ends_every_session(
    serve_sqlite_api: ServeApi, sqlite_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a session, and the file of ended sessions damaged while the service was down
    async with serve_sqlite_api() as api:
        old = await _log_in(api)
    damaged = revoked_sessions_file(sqlite_config)
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_text('{"revoked": {"half-written')

    # When the service starts again, and the old session and a new login are used
    async with serve_sqlite_api() as api:
        old_answer = await api.client.get("/api/v1/clips", headers=_cookie(old))
        new_answer = await api.client.get("/api/v1/clips", headers=_cookie(await _log_in(api)))

    # Then it fails closed: the old session is ended (and that is logged), a new login works
    assert old_answer.status_code == 401
    assert new_answer.status_code == 200
    assert "Ending every UI session" in caplog.text
