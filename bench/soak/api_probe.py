"""Reads the HTTP API now and then, as a dashboard would; keeps every body for the secret scan."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

PATHS = (
    "/health",
    "/api/v1/health",
    "/api/v1/diagnostics",
    "/api/v1/system",
    "/api/v1/cameras",
    "/api/v1/clips?limit=100",
    "/api/v1/stats",
    "/metrics",
)


class ApiProbe:
    def __init__(self, base_url: str, api_key: str, every_s: float = 20.0) -> None:
        self._base_url = base_url
        self._headers = {"X-API-Key": api_key}
        self._every_s = every_s
        self.responses: list[str] = []
        self.failures = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            await self.fetch_all()

    async def fetch_all(self) -> None:
        async with httpx.AsyncClient(
            base_url=self._base_url, headers=self._headers, timeout=10
        ) as client:
            for path in PATHS:
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(path)
                    self.responses.append(f"{path} {response.status_code}\n{response.text}")
                    continue
                self.failures += 1
