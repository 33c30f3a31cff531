"""The security headers on every HTTP answer: pages, JSON, media, probes, errors, 404s.

- `Content-Security-Policy`: everything from this origin only, nothing inline (the UI's
  script and style are static files), no plugins, no `<base>`, forms post here only; and no
  framing (`frame-ancestors 'none'`, with `X-Frame-Options: DENY` for older browsers), so
  no other site can overlay the UI to trick a click;
- `X-Content-Type-Options: nosniff`: a response is only ever what its type says;
- `Referrer-Policy: no-referrer`: a signed media URL (a credential for 15 minutes) never
  leaves in a `Referer` header.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


class SecurityHeaders:
    """Pure ASGI middleware: adds `SECURITY_HEADERS` to the start of every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *_RAW_HEADERS]}
            await send(message)

        await self._app(scope, receive, send_with_headers)
