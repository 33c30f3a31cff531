"""What a clip is found by in a full-text search: its camera's name, the VLM's activity
type, summary and timeline, the known entities it recognised, the detected classes, and a
token for the hour it started in local time (`hour18`), so that "delivery after 6 pm" finds
deliveries from 18:00 to midnight on any day. Postgres indexes it with `tsvector` (English
stemming, GIN), SQLite with FTS5 (Porter stemming); both get the query of
`models/search.py`: every word must match.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homesec.models.search import hour_token


def search_text(document: dict[str, Any]) -> str:
    """The text a clip is found by, from its stored state."""
    parts: list[str] = [str(document.get("camera_name") or "")]
    analysis = document.get("analysis_result") or {}
    activity = str(analysis.get("activity_type") or "")
    parts += [activity, activity.replace("_", " "), str(analysis.get("summary") or "")]
    for entry in analysis.get("entities_timeline") or []:
        parts += [str(entry.get("entity") or ""), str(entry.get("action") or "")]
    parts += [str(entity.get("name") or "") for entity in analysis.get("known_entities") or []]
    classes = (document.get("filter_result") or {}).get("detected_classes") or []
    parts += [str(name) for name in classes]
    started = document.get("start_ts")
    if isinstance(started, str):
        parts.append(hour_token(datetime.fromisoformat(started).astimezone().hour))
    return " ".join(part for part in parts if part)
