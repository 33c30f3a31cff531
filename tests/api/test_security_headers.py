"""Every HTTP answer carries the security headers: every route of the table, files, errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from homesec.throttle import GuessThrottle
from tests.api.conftest import API_KEY, ServeApi
from tests.api.route_table import CLIP_ID, STATIC, app_routes, with_clip
from tests.api.seeding import clip_state

FIXED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
# The policy the UI must work under (tests/browser checks that it does).
POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "media-src": "'self'",
    "frame-ancestors": "'none'",
}


def _lapses(response: httpx.Response) -> tuple[str, ...]:
    """What is missing or wrong in the response's security headers (empty when none)."""
    lapses = [
        f"{name}: {response.headers.get(name)!r}"
        for name, value in FIXED.items()
        if response.headers.get(name) != value
    ]
    policy = dict(
        directive.strip().partition(" ")[::2]
        for directive in response.headers.get("content-security-policy", "").split(";")
    )
    lapses += [
        f"csp {directive}: {policy.get(directive)!r}"
        for directive, sources in POLICY.items()
        if policy.get(directive) != sources
    ]
    return tuple(lapses)


@pytest.mark.parametrize("key", [API_KEY, None], ids=["with-key", "without-key"])
async def test_every_route_of_the_table_answers_with_the_security_headers(
    serve_sqlite_api: ServeApi, person_clip: Path, key: str | None
) -> None:
    # Given the API with auth on and one clip, and a client with or without the key
    headers = {"X-API-Key": key} if key else {}
    async with serve_sqlite_api() as api:
        await with_clip(api, person_clip)

        # When every route of the table is called, and a static file of the UI
        answers = {
            route: await api.client.request(*route, headers=headers)
            for route in app_routes(api.app)
        }
        answers[("GET", STATIC)] = await api.client.get(f"{STATIC}/app.css")

    # Then every answer (200, 206, 303, 401, ...) carries the security headers
    assert len(answers) > 15
    assert {route: _lapses(r) for route, r in answers.items()} == dict.fromkeys(answers, ())


async def test_error_answers_carry_the_security_headers(serve_sqlite_api: ServeApi) -> None:
    # Given the API with auth on, locking an address out after one wrong key
    async with serve_sqlite_api(throttle=GuessThrottle("API key", limit=1)) as api:
        # When it is asked for what does not exist, with a wrong method or query, or with a
        # wrong key (twice)
        key = {"X-API-Key": API_KEY}
        answers = {
            "unknown page": await api.client.get("/no/such/page"),
            "unknown static file": await api.client.get(f"{STATIC}/no-such-file.js"),
            "wrong method": await api.client.delete("/api/v1/clips", headers=key),
            "bad query": await api.client.get("/api/v1/clips?limit=many", headers=key),
            "wrong key": await api.client.get("/api/v1/clips", headers={"X-API-Key": "wrong"}),
            "locked out": await api.client.get("/api/v1/clips", headers=key),
        }

    # Then each is the error it should be, and carries the headers
    assert {name: r.status_code for name, r in answers.items()} == {
        "unknown page": 404,
        "unknown static file": 404,
        "wrong method": 405,
        "bad query": 422,
        "wrong key": 401,
        "locked out": 429,
    }
    assert {name: _lapses(r) for name, r in answers.items()} == dict.fromkeys(answers, ())


async def test_an_unexpected_failure_answers_500_with_the_security_headers(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given a clip only in storage, and the media cache's place taken by a file, so fetching
    # it back fails in a way no handler expects
    async with serve_sqlite_api() as api:
        state = clip_state("front_door", 1_700_000_000)
        state.storage_uri = "file:///storage/front_door/front_door_1700000000.mp4"
        await api.repository.save(state)
        cache = api.config.pipeline.work_dir / "api-media"
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("not a folder")
        transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)

        # When its video is asked for
        async with httpx.AsyncClient(transport=transport, base_url="http://homesec") as client:
            response = await client.get(
                f"/api/v1/clips/{CLIP_ID}/video", headers={"X-API-Key": API_KEY}
            )

    # Then the framework's own 500 answer carries the headers too
    assert response.status_code == 500
    assert _lapses(response) == ()
