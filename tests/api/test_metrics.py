"""`/metrics`: the Prometheus exposition of clips, stage latency, retries, queue, sources."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from homesec import metrics
from homesec.models.enums import ClipStatus, StageName
from tests.api.conftest import API_KEY, ServeApi


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_exposition_parses_and_carries_what_the_pipeline_reported(
    serve_sqlite_api: ServeApi,
) -> None:
    # Given the API, and a pipeline that reported a few things through homesec.metrics
    async with serve_sqlite_api() as api:
        before = _samples((await api.client.get("/metrics", headers={"X-API-Key": API_KEY})).text)
        metrics.clip_finished("metrics_cam", ClipStatus.DONE)
        metrics.clip_finished("metrics_cam", ClipStatus.ERROR)
        metrics.stage_observed(StageName.VLM, 1.7, ok=True)
        metrics.stage_observed(StageName.UPLOAD, 0.2, ok=False)
        metrics.retry(StageName.UPLOAD)
        metrics.set_in_flight(3)
        metrics.set_queue_depth(7)

        # When Prometheus scrapes
        response = await api.client.get("/metrics", headers={"X-API-Key": API_KEY})

    # Then the text exposition parses and shows every reported value
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = _samples(response.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after[key] - before.get(key, 0.0)

    assert delta("homesec_clips_total", camera="metrics_cam", outcome="done") == 1
    assert delta("homesec_clips_total", camera="metrics_cam", outcome="error") == 1
    assert delta("homesec_stage_duration_seconds_count", stage="vlm", outcome="ok") == 1
    assert delta("homesec_stage_duration_seconds_bucket", stage="vlm", outcome="ok", le="2.5") == 1
    assert delta("homesec_stage_duration_seconds_bucket", stage="vlm", outcome="ok", le="1.0") == 0
    assert delta("homesec_stage_retries_total", stage="upload") == 1
    assert after[("homesec_clips_in_flight", frozenset())] == 3
    assert after[("homesec_queue_depth", frozenset())] == 7


async def test_source_health_is_read_fresh_at_every_scrape(serve_sqlite_api: ServeApi) -> None:
    # Given the API with the configured camera's source not started (so not healthy)
    async with serve_sqlite_api(api_key=None) as api:
        # When Prometheus scrapes
        text = (await api.client.get("/metrics")).text

    # Then the camera's source health is there, as 0
    assert _samples(text)[("homesec_source_healthy", frozenset({("camera", "front_door")}))] == 0
