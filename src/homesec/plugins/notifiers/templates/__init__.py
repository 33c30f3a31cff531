"""What notifications carry besides the alert JSON: Jinja2 texts and the snapshot.

The default e-mail templates live in this folder.
An alert template sees the alert's JSON fields by name (`clip_id`, `camera_name`, `risk_level`,
`activity_type`, `summary`, `notify_reason`, `view_url`, `upload_failed`, `ts`, ...; null is
None), `alert` (the `Alert` itself, so `alert.ts.strftime(...)` works) and `snapshot_cid` (the
Content-ID of an inline snapshot, or None). A system-alert template sees `kind`, `message`,
`ts`, `clip_id`, `camera_name`, `stage` and `alert`.

Undefined names are errors, and `checked` renders a template with sample alerts (one with every
optional field null) when the config is validated, so a typo fails `homesec validate`, not the
first real alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from homesec.models.alert import Alert, DetectionEvent, SystemAlert
from homesec.models.digest import Digest
from homesec.models.enums import RiskLevel, StageName, SystemAlertKind

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE_DIR = Path(__file__).parent
EVENT_SNAPSHOT_UNREADABLE = "snapshot_unreadable"

_SAMPLE_TS = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
_SAMPLE_ALERT = Alert(
    clip_id="front_door_1704110400.mp4",
    camera_name="front_door",
    storage_uri="file:///clips/front_door/front_door_1704110400.mp4",
    view_url="https://clips.example.invalid/front_door_1704110400.mp4",
    risk_level=RiskLevel.HIGH,
    activity_type="person_at_door",
    notify_reason="risk_level=high",
    summary="A person tries the door handle.",
    ts=_SAMPLE_TS,
    dedupe_key="front_door_1704110400.mp4",
    upload_failed=False,
)
_SAMPLE_BARE_ALERT = _SAMPLE_ALERT.model_copy(
    update={
        "storage_uri": None,
        "view_url": None,
        "risk_level": None,
        "activity_type": None,
        "summary": None,
        "upload_failed": True,
    }
)
_SAMPLE_SYSTEM_ALERTS = (
    SystemAlert(
        kind=SystemAlertKind.STAGE_RETRIES_EXHAUSTED,
        message="upload gave up after 3 attempt(s)",
        ts=_SAMPLE_TS,
        clip_id=_SAMPLE_ALERT.clip_id,
        camera_name="front_door",
        stage=StageName.UPLOAD,
    ),
    SystemAlert(
        kind=SystemAlertKind.CAMERA_UNHEALTHY, message="no frames for 5 minutes", ts=_SAMPLE_TS
    ),
)


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """Templates from `template_dir` first, then the defaults; `*.html.j2` are autoescaped."""
    folders = [template_dir, DEFAULT_TEMPLATE_DIR] if template_dir else [DEFAULT_TEMPLATE_DIR]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        keep_trailing_newline=True,
    )


def alert_context(alert: Alert, snapshot_cid: str | None = None) -> dict[str, Any]:
    return {**alert.model_dump(mode="json"), "alert": alert, "snapshot_cid": snapshot_cid}


def system_context(alert: SystemAlert) -> dict[str, Any]:
    return {**alert.model_dump(mode="json"), "alert": alert}


def detection_summary(event: DetectionEvent) -> tuple[str, str]:
    """Title and body of the short early message: "person at front_door"."""
    what = ", ".join(event.detected_classes)
    title = f"{what} at {event.camera_name}"
    body = (
        f"HomeSec detected {what} at {event.camera_name} "
        f"({event.confidence:.0%}, {event.ts:%Y-%m-%d %H:%M:%S %Z})."
    )
    if event.analysis_pending:
        body += " The analysis follows."
    return title, body


def digest_message(digest: Digest) -> tuple[str, str]:
    """A digest as a title and a plain-text body: its text, then the links to watch."""
    title = f"HomeSec digest: {digest.clips} clips, {digest.alerts} alerts"
    links = [f"- {c.camera_name} {c.clip_id}: {c.link}" for c in digest.notable if c.link]
    body = digest.text + ("\n\nLinks:\n" + "\n".join(links) if links else "")
    return title, body


def one_line(text: str) -> str:
    """A rendered subject or title: header injection and stray newlines are impossible."""
    return " ".join(text.split())


def checked(
    env: jinja2.Environment, label: str, source: str | None = None, *, system: bool = False
) -> jinja2.Template:
    """Compile a template from `source`, else the file named `label`, and render it with sample
    alerts (system alerts when `system`); ValueError naming `label` when that fails."""
    try:
        template = env.from_string(source) if source is not None else env.get_template(label)
        contexts: Iterable[dict[str, Any]] = (
            [system_context(alert) for alert in _SAMPLE_SYSTEM_ALERTS]
            if system
            else [alert_context(_SAMPLE_ALERT, "snapshot"), alert_context(_SAMPLE_BARE_ALERT)]
        )
        for context in contexts:
            template.render(context)
    except jinja2.TemplateNotFound as exc:
        raise ValueError(f"{label}: template {exc.name} not found") from None
    except Exception as exc:
        raise ValueError(f"{label}: {type(exc).__name__}: {exc}") from None
    return template


async def read_snapshot(snapshot: Path | None, alert: Alert | DetectionEvent) -> bytes | None:
    """The snapshot's JPEG bytes; None, logged, when it cannot be read."""
    if snapshot is None:
        return None
    try:
        return await asyncio.to_thread(snapshot.read_bytes)
    except OSError as exc:
        # The alert matters more than its picture: it goes out without one.
        logger.warning(
            "Cannot read the snapshot of %s: %s",
            alert.clip_id,
            exc,
            extra={
                "event_type": EVENT_SNAPSHOT_UNREADABLE,
                "clip_id": alert.clip_id,
                "camera_name": alert.camera_name,
            },
        )
        return None


def snapshot_filename(alert: Alert | DetectionEvent) -> str:
    return f"{Path(alert.clip_id).stem}.jpg"
