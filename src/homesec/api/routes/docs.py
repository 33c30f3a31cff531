"""The OpenAPI schema, under /api/v1 and behind the API key.

No interactive docs page: FastAPI's pulls its scripts from a CDN, and HomeSec must work
offline and tell no third party that it is being used.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from homesec.api.auth import require_key

OPENAPI_URL = "/api/v1/openapi.json"

router = APIRouter(dependencies=[Depends(require_key)])


@router.get(OPENAPI_URL, include_in_schema=False)
async def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
