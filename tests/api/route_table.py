"""The app's route table, walked by the tests that must hold for every route (auth, headers)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from tests.api.conftest import ApiHarness
from tests.api.seeding import clip_state

CAMERA = "front_door"
CLIP_ID = f"{CAMERA}_1700000000.mp4"
STATIC = "/ui/static"  # the UI's CSS and JS: public, holds no data


# What a protected route answers with the right key and no body, when that is not 200: the
# ingest takes clips only for cameras whose source is http_ingest (front_door's is a folder);
# the UI's "mark reviewed" form sends the browser back to the clip's page; the test app has
# no modes (404), front_door (a folder) has no live picture (404), and a change of mode or
# switch needs its body (422); the actions that
# change the clip come last (`in_call_order`), the UI's delete form first: it sends the
# browser back to the event list, and the others then find no clip.
LAST = [
    ("POST", f"/ui/clips/{CLIP_ID}/delete"),
    ("DELETE", f"/api/v1/clips/{CLIP_ID}"),
    ("POST", f"/ui/clips/{CLIP_ID}/reanalyse"),
    ("POST", f"/api/v1/clips/{CLIP_ID}/reanalyse"),
]
ANSWERS_WITHOUT_BODY = {
    LAST[0]: 303,
    LAST[1]: 404,
    LAST[2]: 404,
    LAST[3]: 404,
    ("POST", f"/api/v1/ingest/{CAMERA}"): 409,
    ("POST", f"/ui/clips/{CLIP_ID}/reviewed"): 303,
    ("GET", "/api/v1/mode"): 404,
    ("GET", f"/api/v1/cameras/{CAMERA}/live.jpg"): 404,
    ("PUT", "/api/v1/mode"): 422,
    ("PUT", f"/api/v1/cameras/{CAMERA}/alerts"): 422,
    ("POST", "/ui/mode"): 404,
    ("POST", f"/ui/cameras/{CAMERA}/alerts"): 404,
}


def app_routes(api: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, path parameters filled in."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(api.routes):
        if isinstance(route.original_route, Mount):
            assert route.path == STATIC, f"unexpected mount {route.path}"
            continue
        path = (route.path or "").replace("{clip_id}", CLIP_ID).replace("{camera}", CAMERA)
        found += [(method, path) for method in sorted(route.methods or ())]
    return found


def in_call_order(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The routes with those that change the clip last, in the order of `LAST`."""
    return [r for r in routes if r not in LAST] + [r for r in LAST if r in routes]


async def with_clip(api: ApiHarness, media: Path) -> None:
    """`CLIP_ID` in the spool and in the state store."""
    api.spool.mkdir(parents=True, exist_ok=True)
    local = api.spool / CLIP_ID
    shutil.copyfile(media, local)
    await api.repository.save(clip_state("front_door", 1_700_000_000, local_path=str(local)))
