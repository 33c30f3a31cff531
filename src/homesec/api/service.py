"""What the JSON routes and the web UI pages both serve, read through the repository.

Each function answers a response model or raises the HTTP error a client should see: 400 for
a bad cursor, 404 for an unknown clip, 503 while the database is unreachable (reads never
raise inside the repository; they answer None, and here that becomes 503).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, status

from homesec import __version__
from homesec.api.context import ApiContext
from homesec.api.schemas import (
    CameraAlerts,
    CameraStatus,
    ClipDetail,
    ClipListParams,
    ClipPageOut,
    ClipSummary,
    IngestedClip,
    ModeStatus,
    SystemStatus,
)
from homesec.api.signing import MediaLinker
from homesec.interfaces import LiveView, ModeControl, UploadedClipSource
from homesec.models.clip import Clip
from homesec.models.enums import ActionRefusal, IngestRefusalReason, ModeSetter
from homesec.models.modes import ModeRefused
from homesec.models.queries import ClipStats, PageKey, as_utc
from homesec.models.results import ActionRefused, IngestRefusal
from homesec.repository.clip_repository import ClipListing, ReviewRefused

DEFAULT_STATS_DAYS = 30


async def clip_page(context: ApiContext, params: ClipListParams) -> ClipPageOut:
    try:
        after = PageKey.decode(params.cursor) if params.cursor else None
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from None
    # The params are a ClipFilter; the query reads only the filter's fields.
    page = await context.repository.list_clips(params, limit=params.limit, after=after)
    if page is None:
        raise _database_unavailable()
    return ClipPageOut(
        items=[clip_summary(listing, context.media_links) for listing in page.items],
        next_cursor=page.next_key.encode() if page.next_key else None,
    )


async def clip_listing(context: ApiContext, clip_id: str) -> ClipListing:
    listing = await context.repository.get_listing(clip_id)
    if listing is not None:
        return listing
    if await context.repository.ping():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no clip {clip_id}")
    raise _database_unavailable()


async def clip_detail(context: ApiContext, clip_id: str) -> ClipDetail:
    listing = await clip_listing(context, clip_id)
    events = await context.repository.list_events(clip_id)
    state = listing.state
    return ClipDetail(
        clip=clip_summary(listing, context.media_links),
        stages=state.stages,
        notifications=state.notifications,
        local_path=state.local_path,
        storage_uri=state.storage_uri,
        analysis_uri=state.analysis_uri,
        snapshot_uri=state.snapshot_uri,
        filter_result=state.filter_result,
        analysis=state.analysis_result,
        alert_decision=state.alert_decision,
        events=events,
    )


async def mark_reviewed(context: ApiContext, clip_id: str) -> ClipDetail:
    """Mark the clip reviewed: 404 unknown, 409 still being processed or not written."""
    match await context.repository.mark_reviewed(clip_id):
        case None:
            await clip_listing(context, clip_id)  # 404, or 503 when the database is down
            raise _database_unavailable()
        case ReviewRefused(reason=reason):
            raise HTTPException(status.HTTP_409_CONFLICT, reason)
    if context.reviews is not None:
        context.reviews.refresh_soon()
    return await clip_detail(context, clip_id)


async def delete_clip(context: ApiContext, clip_id: str) -> None:
    """Delete a clip everywhere: 404 unknown, 409 still processed, 502 storage failed, 503
    the database did not take it."""
    state = (await clip_listing(context, clip_id)).state
    _raise_refusal(await context.monitor.pipeline.delete(state))
    context.media.forget(state)
    if context.reviews is not None and state.needs_review:
        context.reviews.refresh_soon()


async def reanalyse(context: ApiContext, clip_id: str) -> None:
    """Analyse the clip again with today's config: 404 unknown, 409 still processed, 503 the
    request could not be recorded."""
    state = (await clip_listing(context, clip_id)).state
    _raise_refusal(await context.monitor.pipeline.reanalyse(state))


def _raise_refusal(refused: ActionRefused | None) -> None:
    match refused:
        case ActionRefused(reason=ActionRefusal.IN_FLIGHT, message=message):
            raise HTTPException(status.HTTP_409_CONFLICT, message)
        case ActionRefused(reason=ActionRefusal.STORAGE_FAILED, message=message):
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, message)
        case ActionRefused(message=message):
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, message)


def mode_status(context: ApiContext) -> ModeStatus:
    """The mode and the cameras' alert switches: 404 when HomeSec has no modes."""
    modes = _modes(context)
    state = modes.state
    return ModeStatus(
        mode=state.mode,
        modes=modes.names,
        set_at=state.set_at,
        set_by=state.set_by,
        cameras=[
            CameraAlerts(name=name, alerts_on=state.alerts_on(name)) for name in modes.camera_names
        ],
    )


async def set_mode(context: ApiContext, mode: str, by: ModeSetter) -> ModeStatus:
    """Change the mode: 400 for a mode that is not configured."""
    match await _modes(context).set_mode(mode, by):
        case ModeRefused(reason=reason):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, reason)
    return mode_status(context)


async def set_alerts(context: ApiContext, camera: str, on: bool, by: ModeSetter) -> ModeStatus:
    """Switch a camera's alerts on or off: 404 for an unknown camera."""
    match await _modes(context).set_alerts(camera, on, by):
        case ModeRefused(reason=reason):
            raise HTTPException(status.HTTP_404_NOT_FOUND, reason)
    return mode_status(context)


def _modes(context: ApiContext) -> ModeControl:
    if context.modes is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no modes configured (see `modes:`)")
    return context.modes


async def clip_stats(
    context: ApiContext, since: datetime | None, until: datetime | None
) -> ClipStats:
    until = as_utc(until) if until else datetime.now(UTC)
    since = as_utc(since) if since else until - timedelta(days=DEFAULT_STATS_DAYS)
    if since >= until:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "since must be before until")
    stats = await context.repository.stats(since, until)
    if stats is None:
        raise _database_unavailable()
    return stats


async def live_picture(context: ApiContext, camera: str) -> bytes:
    """The camera's latest picture: 404 unknown camera, or none recent (no live view)."""
    source = next((s for s in context.sources if s.camera_name == camera), None)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera}")
    picture = await source.live_picture() if isinstance(source, LiveView) else None
    if picture is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live picture of {camera} right now")
    return picture


async def camera_statuses(context: ApiContext) -> list[CameraStatus]:
    """Every configured camera's source health, with its stored clips (when readable)."""
    activity = {a.camera_name: a for a in await context.repository.camera_activity() or []}
    cameras = []
    for source in context.sources:
        heartbeat = source.last_heartbeat()
        seen = activity.get(source.camera_name)
        cameras.append(
            CameraStatus(
                name=source.camera_name,
                healthy=source.is_healthy(),
                last_heartbeat=datetime.fromtimestamp(heartbeat, UTC) if heartbeat else None,
                clips=seen.clips if seen else 0,
                last_clip_at=seen.last_clip_at if seen else None,
            )
        )
    return cameras


async def system_status(context: ApiContext) -> SystemStatus:
    diagnostics, cameras = await asyncio.gather(
        context.monitor.diagnostics(), camera_statuses(context)
    )
    health = diagnostics.health
    return SystemStatus(
        status=health.status,
        version=__version__,
        uptime_s=health.uptime_s,
        components=health.components,
        notifiers=diagnostics.notifiers,
        cameras=cameras,
        clips_in_flight=diagnostics.clips_in_flight,
        dropped_state_writes=diagnostics.dropped_state_writes,
        vlm_providers=context.monitor.pipeline.vlm_stats(),
    )


def clip_summary(listing: ClipListing, media_links: MediaLinker) -> ClipSummary:
    state = listing.state
    analysis, detections = state.analysis_result, state.filter_result
    decision = state.alert_decision
    links = media_links.links(state.clip_id)
    return ClipSummary(
        clip_id=state.clip_id,
        camera_name=state.camera_name,
        status=state.status,
        received_at=listing.received_at,
        start_ts=state.start_ts,
        risk_level=analysis.risk_level if analysis else None,
        activity_type=analysis.activity_type if analysis else None,
        summary=analysis.summary if analysis else None,
        detected_classes=detections.detected_classes if detections else [],
        alerted=decision.notify if decision else None,
        notify_reason=decision.notify_reason if decision else None,
        needs_review=state.needs_review,
        upload_failed=state.upload_failed,
        view_url=state.view_url,
        video_url=links.video,
        snapshot_url=links.snapshot,
    )


def _database_unavailable() -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "state database unavailable")


_REFUSAL_STATUS = {
    IngestRefusalReason.EMPTY: status.HTTP_400_BAD_REQUEST,
    IngestRefusalReason.TOO_LARGE: status.HTTP_413_CONTENT_TOO_LARGE,
    IngestRefusalReason.NOT_A_VIDEO: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    IngestRefusalReason.NOT_RUNNING: status.HTTP_503_SERVICE_UNAVAILABLE,
    IngestRefusalReason.NOT_STORED: status.HTTP_507_INSUFFICIENT_STORAGE,
    IngestRefusalReason.TOO_SLOW: status.HTTP_408_REQUEST_TIMEOUT,
}


async def ingest(
    context: ApiContext, camera: str, body: AsyncIterator[bytes], filename: str | None
) -> IngestedClip:
    """Hand the body to the camera's `http_ingest` source; its refusal becomes a 4xx."""
    source = next((s for s in context.sources if s.camera_name == camera), None)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera named {camera!r}")
    if not isinstance(source, UploadedClipSource):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"camera {camera!r} does not take clips over HTTP (its source is not http_ingest)",
        )
    match await source.receive(body, filename):
        case IngestRefusal() as refusal:
            raise HTTPException(_REFUSAL_STATUS[refusal.reason], refusal.message)
        case Clip() as clip:
            return IngestedClip(
                clip_id=clip.clip_id, camera_name=clip.camera_name, duration_s=clip.duration_s
            )
