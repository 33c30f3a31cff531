"""Prometheus metrics of the service, and the small functions the pipeline calls to move them.

The metrics live in prometheus_client's default registry (with the process collectors) and
are served at `/metrics`. Callers use the functions below, never the metric objects, so the
names and labels stay in one place. Labels are bounded: camera names come from the config,
stages and outcomes from enums.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

# From a fast local filter (tens of ms) to a slow VLM or a large upload (minutes).
_STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

_CLIPS = Counter(
    "homesec_clips", "Clips whose flow ended, by camera and outcome", ["camera", "outcome"]
)
_STAGE_SECONDS = Histogram(
    "homesec_stage_duration_seconds",
    "Duration of one stage attempt (upload, filter, vlm, notify), by outcome",
    ["stage", "outcome"],
    buckets=_STAGE_BUCKETS,
)
_RETRIES = Counter("homesec_stage_retries", "Failed stage attempts that were retried", ["stage"])
_IN_FLIGHT = Gauge("homesec_clips_in_flight", "Clips being processed")
_QUEUE_DEPTH = Gauge("homesec_queue_depth", "Clips waiting for a processing slot")
_SOURCE_HEALTHY = Gauge(
    "homesec_source_healthy", "1 when the camera's source can receive clips", ["camera"]
)
_SPOOL_BYTES = Gauge("homesec_spool_bytes", "Bytes of clips kept on local disk")
_SPOOL_OVER_LIMIT = Gauge(
    "homesec_spool_over_limit",
    "1 when retention cannot hold the spool's size cap or free-space floor (clips not yet in "
    "storage are kept)",
)
_LOG_RECORDS_DROPPED = Counter(
    "homesec_log_records_dropped", "Log records the Postgres log sink could not write"
)


_VLM_CALLS = Counter(
    "homesec_vlm_provider_calls", "Calls to each configured VLM", ["provider", "outcome"]
)
_VLM_SECONDS = Histogram(
    "homesec_vlm_provider_seconds", "Time of each VLM call", ["provider"], buckets=_STAGE_BUCKETS
)
_VLM_TOKENS = Counter(
    "homesec_vlm_provider_tokens", "Tokens used per VLM", ["provider", "direction"]
)
_VLM_COST = Counter("homesec_vlm_provider_cost_usd", "Estimated cost per VLM, USD", ["provider"])


def vlm_provider_called(provider: str, seconds: float, ok: bool) -> None:
    _VLM_CALLS.labels(provider=provider, outcome="ok" if ok else "error").inc()
    _VLM_SECONDS.labels(provider=provider).observe(seconds)


def vlm_provider_usage(provider: str, input_tokens: int, output_tokens: int, cost: float) -> None:
    _VLM_TOKENS.labels(provider=provider, direction="input").inc(input_tokens)
    _VLM_TOKENS.labels(provider=provider, direction="output").inc(output_tokens)
    _VLM_COST.labels(provider=provider).inc(cost)


def clip_finished(camera: str, status: str) -> None:
    """Count a clip whose flow ended; `status` is its final `ClipStatus` (done or error)."""
    _CLIPS.labels(camera=camera, outcome=str(status)).inc()


def stage_observed(stage: str, seconds: float, ok: bool) -> None:
    """Record one attempt of a stage (`StageName`) and whether it succeeded."""
    outcome = "ok" if ok else "error"
    _STAGE_SECONDS.labels(stage=str(stage), outcome=outcome).observe(max(seconds, 0.0))


def retry(stage: str) -> None:
    _RETRIES.labels(stage=str(stage)).inc()


def set_in_flight(count: int) -> None:
    _IN_FLIGHT.set(count)


def set_queue_depth(count: int) -> None:
    _QUEUE_DEPTH.set(count)


def set_source_health(camera: str, healthy: bool) -> None:
    _SOURCE_HEALTHY.labels(camera=camera).set(1 if healthy else 0)


def set_spool(size_bytes: int, *, over_limit: bool) -> None:
    _SPOOL_BYTES.set(size_bytes)
    _SPOOL_OVER_LIMIT.set(1 if over_limit else 0)


def log_records_dropped(count: int = 1) -> None:
    _LOG_RECORDS_DROPPED.inc(count)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every registered metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
