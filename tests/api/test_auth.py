"""Auth: the API key on every route but the probes, signed media URLs, the UI's session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from homesec.api.signing import Signer, signed_media_links
from tests.api.conftest import API_KEY, ApiHarness, ServeApi
from tests.api.seeding import clip_state

CLIP_ID = "front_door_1700000000.mp4"
PROTECTED = [
    "/api/v1/clips",
    f"/api/v1/clips/{CLIP_ID}",
    f"/api/v1/clips/{CLIP_ID}/video",
    f"/api/v1/clips/{CLIP_ID}/snapshot",
    "/api/v1/cameras",
    "/api/v1/system",
    "/api/v1/stats",
    "/api/v1/diagnostics",
    "/api/v1/openapi.json",
    "/metrics",
]


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _with_clip(api: ApiHarness, media: Path) -> None:
    api.spool.mkdir(parents=True, exist_ok=True)
    local = api.spool / CLIP_ID
    shutil.copyfile(media, local)
    await api.repository.save(clip_state("front_door", 1_700_000_000, local_path=str(local)))


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong-key"}, {"Authorization": "Bearer wrong-key"}],
    ids=["no-key", "wrong-key", "wrong-bearer"],
)
async def test_every_route_but_the_probes_refuses_a_missing_or_wrong_key(
    serve_sqlite_api: ServeApi, path: str, headers: dict[str, str]
) -> None:
    # Given the API with auth on
    async with serve_sqlite_api() as api:
        # When a protected route is called without the right key
        response = await api.client.get(path, headers=headers)
        probe = await api.client.get("/health", headers=headers)

    # Then it answers 401 asking for a bearer token; the probe stays open
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert probe.status_code in (200, 503)


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}]
)
async def test_the_right_key_opens_every_route(
    serve_sqlite_api: ServeApi, person_clip: Path, headers: dict[str, str]
) -> None:
    # Given the API with auth on and one clip with a snapshot
    async with serve_sqlite_api() as api:
        await _with_clip(api, person_clip)
        (api.spool / "front_door_1700000000.snapshot.jpg").write_bytes(b"\xff\xd8\xff\xd9")

        # When every protected route is called with the key
        responses = {path: await api.client.get(path, headers=headers) for path in PROTECTED}

    # Then each answers
    assert {path: r.status_code for path, r in responses.items()} == dict.fromkeys(PROTECTED, 200)


async def test_a_signed_media_url_works_without_the_key_until_it_expires(
    serve_sqlite_api: ServeApi, person_clip: Path
) -> None:
    # Given the API with auth on, a clip, and a clock we control
    clock = FrozenClock(1_000_000.0)
    signer = Signer(b"k" * 32, clock)
    async with serve_sqlite_api(signer=signer) as api:
        await _with_clip(api, person_clip)
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
        await _with_clip(api, person_clip)
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
        await _with_clip(api, person_clip)
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
    # Given a session cookie signed with another secret
    forged = Signer(b"not the server's").token("ui-session", 3600)
    async with serve_sqlite_api() as api:
        api.client.cookies.set("homesec_session", forged)

        # When the API and a page are called with it
        clips = await api.client.get("/api/v1/clips")
        page = await api.client.get("/ui/")

    # Then neither opens
    assert clips.status_code == 401 and page.status_code == 303
