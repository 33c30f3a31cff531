"""A fake Frigate NVR, written from Frigate's documentation (MQTT and HTTP API pages).

- HTTP (uvicorn in a thread, on a fixed free port): `GET /api/version`, `GET /api/review`
  (`cameras`, `after`, `before`: items active after `after`), and the recording clip
  `GET /api/{camera}/start/{start}/end/{end}/clip.mp4` (here: the clip of the item with that
  camera and start, or 404 while it is "not ready"), `GET /api/events/{id}` (a tracked
  object) and `POST /api/events/{id}/description` and `/sub_label` (kept in `descriptions`
  and `sub_labels`). Every request path is in `requests`.
- MQTT: `publish_review(type, item)` sends `{prefix}/reviews` messages (`before`/`after`) to
  a real broker, as Frigate does when an item starts, changes and ends.
- Scripting: `add_review(...)` adds an item with its clip; `not_ready_for(id, n)` answers 404
  to the first n clip requests of an item (Frigate writes the clip a little after the end);
  an item's `clip_delay_s`, `clip_trickle_s` and `clip_encoding` make its clip late, slow or
  mislabelled;
  `stop()` and `start()` take the HTTP API down and back up on the same port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.services.mosquitto import BrokerAddress

HOST = "127.0.0.1"
VERSION = "0.16.0-fake"
_START_TIMEOUT_S = 10.0


@dataclass
class FakeEvent:
    """A tracked object, as `/api/events/{id}` shows it (Frigate 0.14+: score and box in
    `data`, the box as x, y, width, height relative to the frame)."""

    id: str
    label: str
    start_time: float
    score: float = 0.9
    box: tuple[float, float, float, float] = (0.25, 0.5, 0.1, 0.3)
    false_positive: bool = False
    zones: list[str] = field(default_factory=list)

    def as_json(self, camera: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "sub_label": None,
            "camera": camera,
            "start_time": self.start_time,
            "end_time": self.start_time + 5,
            "false_positive": self.false_positive,
            "zones": self.zones,
            "thumbnail": None,
            "has_clip": True,
            "has_snapshot": True,
            "retain_indefinitely": False,
            "plus_id": None,
            "model_hash": "fake",
            "detector_type": "cpu",
            "model_type": "ssd",
            "data": {
                "box": list(self.box),
                "region": [0, 0, 1, 1],
                "score": self.score - 0.05,
                "top_score": self.score,
                "attributes": [],
                "type": "object",
            },
        }


@dataclass
class FakeReview:
    id: str
    camera: str
    start_time: float
    end_time: float | None
    severity: str = "alert"
    objects: list[str] = field(default_factory=lambda: ["person"])
    zones: list[str] = field(default_factory=list)
    clip: bytes = b""
    events: list[FakeEvent] = field(default_factory=list)
    clip_delay_s: float = 0.0
    """How long Frigate takes to cut the clip before it answers."""
    clip_encoding: str | None = None
    """The clip's `Content-Encoding` header, when Frigate (or a proxy) says it has one."""
    clip_trickle_s: float = 0.0
    """When set, the clip is sent in 64 KiB pieces with this pause between them."""

    def as_json(self) -> dict[str, Any]:
        """As Frigate's API and MQTT messages show a review segment."""
        return {
            "id": self.id,
            "camera": self.camera,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "has_been_reviewed": False,
            "severity": self.severity,
            "thumb_path": f"/media/frigate/clips/review/thumb-{self.camera}-{self.id}.webp",
            "data": {
                "detections": [event.id for event in self.events],
                "objects": self.objects,
                "sub_labels": [],
                "zones": self.zones,
                "audio": [],
            },
        }


class FakeFrigate:
    def __init__(self, broker: BrokerAddress, topic_prefix: str) -> None:
        self.broker = broker
        self.topic_prefix = topic_prefix
        self.reviews: dict[str, FakeReview] = {}
        self.requests: list[str] = []
        self.descriptions: dict[str, str] = {}
        self.sub_labels: dict[str, str] = {}
        self.deleted_events: set[str] = set()
        self._not_ready: dict[str, int] = {}
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.port: int = probe.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def add_review(self, review: FakeReview) -> FakeReview:
        with self._lock:
            self.reviews[review.id] = review
        return review

    def not_ready_for(self, review_id: str, requests: int) -> None:
        with self._lock:
            self._not_ready[review_id] = requests

    def clip_requests(self, review_id: str) -> int:
        with self._lock:
            review = self.reviews[review_id]
            prefix = f"/api/{review.camera}/start/{review.start_time}/"
            return sum(path.startswith(prefix) for path in self.requests)

    async def publish_review(
        self, kind: str, review: FakeReview, payload: bytes | None = None
    ) -> None:
        """Publish a `reviews` message (or raw `payload`) as Frigate does."""
        body = payload
        if body is None:
            item = review.as_json()
            body = json.dumps({"type": kind, "before": item, "after": item}).encode()
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.publish(f"{self.topic_prefix}/reviews", body, qos=1)

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/api/version", self._version),
                Route("/api/review", self._review_list),
                Route("/api/{camera}/start/{start:float}/end/{end:float}/clip.mp4", self._clip),
                Route("/api/events/{event_id}", self._event),
                Route("/api/events/{event_id}/description", self._describe, methods=["POST"]),
                Route("/api/events/{event_id}/sub_label", self._sub_label, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Frigate did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request.url.path)

    async def _version(self, request: Request) -> Response:
        self._record(request)
        return PlainTextResponse(VERSION)

    async def _review_list(self, request: Request) -> Response:
        self._record(request)
        cameras = request.query_params.get("cameras", "all")
        after = float(request.query_params.get("after", 0))
        before = float(request.query_params.get("before", time.time() + 86_400))
        with self._lock:
            items = [
                review.as_json()
                for review in self.reviews.values()
                if (cameras == "all" or review.camera in cameras.split(","))
                and review.start_time < before
                and (review.end_time is None or review.end_time > after)
            ]
        return JSONResponse(sorted(items, key=lambda item: -item["start_time"]))

    def _find_event(self, event_id: str) -> tuple[FakeEvent, FakeReview] | None:
        if event_id in self.deleted_events:
            return None
        with self._lock:
            for review in self.reviews.values():
                for event in review.events:
                    if event.id == event_id:
                        return event, review
        return None

    async def _event(self, request: Request) -> Response:
        self._record(request)
        found = self._find_event(request.path_params["event_id"])
        if found is None:
            return JSONResponse({"success": False, "message": "Event not found"}, 404)
        event, review = found
        return JSONResponse(event.as_json(review.camera))

    async def _describe(self, request: Request) -> Response:
        return await self._set_field(request, "description", self.descriptions)

    async def _sub_label(self, request: Request) -> Response:
        return await self._set_field(request, "subLabel", self.sub_labels)

    async def _set_field(self, request: Request, key: str, into: dict[str, str]) -> Response:
        """An admin POST that sets one field of an event (its description, its sub label)."""
        self._record(request)
        event_id = request.path_params["event_id"]
        if self._find_event(event_id) is None:
            return JSONResponse({"success": False, "message": "Event not found"}, 404)
        body = await request.json()
        with self._lock:
            into[event_id] = body[key]
        return JSONResponse({"success": True, "message": f"Event {key} updated"})

    async def _clip(self, request: Request) -> Response:
        self._record(request)
        camera, start = request.path_params["camera"], request.path_params["start"]
        with self._lock:
            matching = [
                r for r in self.reviews.values() if r.camera == camera and r.start_time == start
            ]
            review = matching[0] if matching else None
            waiting = self._not_ready.get(review.id, 0) if review else 0
            if review is not None and waiting:
                self._not_ready[review.id] = waiting - 1
        if review is None or waiting:
            return JSONResponse({"success": False, "message": "Not found"}, status_code=404)
        await asyncio.sleep(review.clip_delay_s)
        headers = {"Content-Encoding": review.clip_encoding} if review.clip_encoding else None
        if review.clip_trickle_s:
            return StreamingResponse(_trickled(review.clip, review.clip_trickle_s), headers=headers)
        return Response(review.clip, media_type="video/mp4", headers=headers)


async def _trickled(data: bytes, pause_s: float) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1 << 16):
        yield data[start : start + (1 << 16)]
        await asyncio.sleep(pause_s)


@pytest.fixture
def fake_frigate(mqtt_broker: BrokerAddress, mqtt_topic_prefix: str) -> Iterator[FakeFrigate]:
    """A running fake Frigate whose MQTT topic prefix no other test uses."""
    frigate = FakeFrigate(mqtt_broker, f"{mqtt_topic_prefix}/frigate")
    frigate.start()
    try:
        yield frigate
    finally:
        frigate.stop()
