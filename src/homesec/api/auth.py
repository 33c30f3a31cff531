"""API key check for every route but the public probes (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status

API_KEY_HEADER = "X-API-Key"


def api_key_guard(expected: str | None) -> Callable[[Request], Awaitable[None]]:
    """A dependency that accepts `X-API-Key: KEY` or `Authorization: Bearer KEY`."""

    async def guard(request: Request) -> None:
        if expected is None:
            return
        presented = request.headers.get(API_KEY_HEADER) or _bearer(request)
        if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None
