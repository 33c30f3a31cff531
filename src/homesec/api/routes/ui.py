"""The web UI: server-rendered pages (Jinja2 + a little plain JS) over the API's services.

Pages: the event list with filters and, with modes, the mode and the cameras' alert
switches (`/ui/`), one clip with its player (`/ui/clips/{id}`),
the system's health and statistics (`/ui/system`). With auth on, a page without a session
redirects to the login form, which checks the API key once and sets the session cookie
(`auth.py`). Nothing to build: templates and static files ship inside the package.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError

from homesec.api import service
from homesec.api.auth import SESSION_COOKIE, authenticator, client_address
from homesec.api.context import Context
from homesec.api.schemas import ClipListParams, LoginForm
from homesec.api.sessions import SESSION_TTL_S
from homesec.interfaces import LiveView
from homesec.models.enums import ClipStatus, ModeSetter, RiskLevel
from homesec.models.search import SearchQuery

_UI_DIR = Path(__file__).parents[1] / "ui"
STATIC_DIR = _UI_DIR / "static"
_templates = Jinja2Templates(directory=_UI_DIR / "templates")
_DAY = timedelta(days=1)
_DAY_CLIPS = 200  # the camera page's day: more than a day of a busy camera's clips


def _highlight(text: str, query: str | None) -> Markup:
    """`text` (escaped) with the words the search matched in <mark>."""
    stems = [_stem(word) for word in SearchQuery.parse(query).words] if query else []
    if not stems:
        return escape(text)
    pieces = re.split(r"([^\W_]+)", text)
    return Markup("").join(
        Markup("<mark>{}</mark>").format(piece)
        if piece and _matches(_stem(piece), stems)
        else escape(piece)
        for piece in pieces
    )


def _stem(word: str) -> str:
    """A crude English stem, enough to show where a stemmed search matched ("walking" and
    "walks": walk)."""
    word = word.casefold()
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _matches(stem: str, searched: list[str]) -> bool:
    return any(
        stem.startswith(word) or (len(stem) >= 3 and word.startswith(stem)) for word in searched
    )


_templates.env.filters["highlight"] = _highlight


async def _signed_in(request: Request) -> None:
    if not authenticator(request).is_authenticated(request):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = "/ui/login?" + urlencode({"next": here})
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": login})


# What a browser says of a request this site's own page made, or the user typed.
_OWN_FETCH_SITES = ("same-origin", "none")


async def _not_from_another_site(request: Request) -> None:
    """A form another site's page posts here is refused (CSRF): with auth off (the default)
    any page the user visits could otherwise switch alerts off or delete clips, and with
    auth on SameSite=Lax still lets a same-site page (another port of the host) post.

    Browsers say where a request comes from in Sec-Fetch-Site; an older one is judged by
    its Origin (the UI's pages send no referrer, so their own posts may say "null").
    Without either header it is no browser: the session or key decides, as before."""
    if request.method in ("GET", "HEAD"):
        return
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None:
        own = site in _OWN_FETCH_SITES
    else:
        own = origin in (None, "null") or urlsplit(origin).netloc == request.headers.get("host")
    if not own:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a form from another site is refused")


router = APIRouter(include_in_schema=False)
pages = APIRouter(
    prefix="/ui",
    include_in_schema=False,
    dependencies=[Depends(_signed_in), Depends(_not_from_another_site)],
)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status.HTTP_303_SEE_OTHER)


@router.get("/ui/login")
async def login_form(request: Request, next: str = "/ui/") -> Response:
    if not authenticator(request).enabled:
        return RedirectResponse("/ui/", status.HTTP_303_SEE_OTHER)
    return _render(request, "login.html", next=_local(next))


@router.post("/ui/login")
async def login(request: Request) -> Response:
    auth = authenticator(request)
    fields = dict(parse_qsl((await request.body()).decode(errors="replace")))
    next_page = _local(fields.get("next", "/ui/"))
    client = client_address(request)
    if auth.retry_after_s(client) is not None:
        error = "Too many wrong keys: wait a minute"
        return _render(request, "login.html", 429, next=next_page, error=error)
    try:
        form = LoginForm.model_validate(fields)
    except ValidationError:
        form = None
    if form is None or not auth.key_matches(form.api_key, client):
        return _render(request, "login.html", 401, next=next_page, error="Wrong API key")
    response = RedirectResponse(next_page, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        auth.sessions.new(),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> RedirectResponse:
    session = request.cookies.get(SESSION_COOKIE)
    if session is not None:
        # Ended on the server too: a copy of the cookie must not outlive the logout.
        await authenticator(request).sessions.end(session)
    response = RedirectResponse("/ui/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response


@pages.get("/")
async def events(request: Request, context: Context) -> Response:
    form = {key: value.strip() for key, value in request.query_params.items() if value.strip()}
    choices: dict[str, Any] = {
        "form": form,
        "cameras": [source.camera_name for source in context.sources],
        "statuses": list(ClipStatus),
        "risks": [level.label for level in RiskLevel],
        "modes": service.mode_status(context) if context.modes is not None else None,
    }
    try:
        params = ClipListParams.model_validate(_inclusive_until(form))
        page = await service.clip_page(context, params)
    except ValidationError as exc:
        return _render(request, "events.html", 422, error=_first_error(exc), **choices)
    except HTTPException as exc:
        return _render(request, "events.html", exc.status_code, error=exc.detail, **choices)
    more = urlencode({**form, "cursor": page.next_cursor}) if page.next_cursor else None
    return _render(request, "events.html", page=page, more=more, **choices)


@pages.get("/clips/{clip_id}")
async def clip(request: Request, context: Context, clip_id: str) -> Response:
    try:
        detail = await service.clip_detail(context, clip_id)
    except HTTPException as exc:
        return _render(request, "error.html", exc.status_code, message=exc.detail)
    zones = context.camera_zones.get(detail.clip.camera_name, {})
    return _render(request, "clip.html", detail=detail, clip=detail.clip, zones=zones)


@pages.get("/cameras/{camera}")
async def camera(request: Request, context: Context, camera: str) -> Response:
    found = [c for c in await service.camera_statuses(context) if c.name == camera]
    if not found:
        return _render(request, "error.html", 404, message=f"no camera {camera}")
    since = datetime.now(UTC) - _DAY
    params = ClipListParams(camera=camera, since=since, limit=_DAY_CLIPS)
    try:
        page = await service.clip_page(context, params)
    except HTTPException as exc:
        return _render(request, "error.html", exc.status_code, message=exc.detail)
    marks = [
        {
            "clip": clip,
            "alerted": clip.alerted,
            "left": 100 * (clip.received_at - since) / _DAY,
        }
        for clip in reversed(page.items)
    ]
    live = any(s.camera_name == camera and isinstance(s, LiveView) for s in context.sources)
    return _render(request, "camera.html", camera=found[0], live=live, marks=marks, since=since)


@pages.post("/clips/{clip_id}/reviewed")
async def reviewed(request: Request, context: Context, clip_id: str) -> Response:
    done = service.mark_reviewed(context, clip_id)
    return await _acted(request, done, f"/ui/clips/{quote(clip_id)}")


@pages.post("/clips/{clip_id}/delete")
async def delete(request: Request, context: Context, clip_id: str) -> Response:
    return await _acted(request, service.delete_clip(context, clip_id), "/ui/")


@pages.post("/clips/{clip_id}/reanalyse")
async def reanalyse(request: Request, context: Context, clip_id: str) -> Response:
    done = service.reanalyse(context, clip_id)
    return await _acted(request, done, f"/ui/clips/{quote(clip_id)}")


@pages.post("/mode")
async def mode(request: Request, context: Context) -> Response:
    fields = await _form(request)
    done = service.set_mode(context, fields.get("mode", ""), ModeSetter.UI)
    return await _acted(request, done, "/ui/")


@pages.post("/cameras/{camera}/alerts")
async def alerts(request: Request, context: Context, camera: str) -> Response:
    on = (await _form(request)).get("on") == "true"
    return await _acted(request, service.set_alerts(context, camera, on, ModeSetter.UI), "/ui/")


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(errors="replace")))


async def _acted(request: Request, action: Awaitable[object], then: str) -> Response:
    """A form's action: back to `then` when it went through, else a page saying why."""
    try:
        await action
    except HTTPException as exc:
        return _render(request, "error.html", exc.status_code, message=exc.detail)
    return RedirectResponse(then, status.HTTP_303_SEE_OTHER)


@pages.get("/system")
async def system(request: Request, context: Context) -> Response:
    status_task = service.system_status(context)
    stats_task = service.clip_stats(context, None, None)
    system_status, stats = await asyncio.gather(status_task, stats_task, return_exceptions=True)
    if isinstance(system_status, BaseException):
        raise system_status
    stats_or_none = None if isinstance(stats, BaseException) else stats
    return _render(request, "system.html", system=system_status, stats=stats_or_none)


def _render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    auth = authenticator(request)
    values["show_logout"] = auth.enabled and auth.is_authenticated(request)
    return _templates.TemplateResponse(request, template, values, status_code=status_code)


def _local(target: str) -> str:
    # Only paths of this site: an open redirect would make the login page a phishing tool.
    is_local = target.startswith("/") and not target.startswith(("//", "/\\"))
    return target if is_local else "/ui/"


def _inclusive_until(form: dict[str, str]) -> dict[str, str]:
    # A date picker's "to" day is meant to include that day.
    until = form.get("until", "")
    try:
        day = date.fromisoformat(until) if len(until) == 10 else None
    except ValueError:
        day = None
    return form if day is None else {**form, "until": (day + timedelta(days=1)).isoformat()}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"
