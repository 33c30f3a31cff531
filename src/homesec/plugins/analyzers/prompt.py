"""The conversation sent to the VLM: instructions, what is known about the clip, its frames.

The system message is the configurable `base_prompt` (or the built-in one) followed by the
reply contract: risk levels, the activity types with their descriptions and the JSON fields.
The contract is always appended, so a custom prompt cannot break parsing, and it is spelled
out in words because servers without structured output see nothing else. The user message
says which camera, when (local time of day), what the object filter saw and when, then gives
the frames in time order, each introduced by its time so the timeline can refer to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from homesec.interfaces import AnalysisContext
from homesec.models.results import FilterResult
from homesec.plugins.analyzers.frames import EncodedFrame
from homesec.plugins.analyzers.references import Reference

if TYPE_CHECKING:
    from homesec.plugins.analyzers.openai import OpenAIAnalyzerConfig

Message = dict[str, Any]
ImageDetail = Literal["auto", "low", "high"]

DEFAULT_BASE_PROMPT = (
    "You review clips from a home security camera for the people who live there. Say what "
    "happens, judge how worrying it is, and describe only what the frames show: no guesses "
    "about identity or intent beyond what is visible."
)

# The default activity types, in the order shown to the model, and what each means.
DEFAULT_ACTIVITY_DESCRIPTIONS: Mapping[str, str] = {
    "delivery": "a courier or postal worker drops off a parcel, food or mail",
    "doorbell": "someone rings the bell or knocks and waits to be answered",
    "person_at_door": "someone comes to the door without delivering or ringing",
    "package_pickup": "someone takes a parcel away (a resident, or a thief)",
    "loitering": "someone lingers or returns without a clear purpose",
    "break_in": "someone forces or tries doors, windows, locks, or a vehicle",
    "animal": "only animals (pets, wildlife)",
    "vehicle": "a vehicle arrives, parks or leaves; nobody does anything else of note",
    "passerby": "someone passes by without stopping",
    "unknown": "none of the above, or the frames do not show enough to tell",
}

_REFERENCES_INTRO = (
    "Known to the household, each in a reference picture that is not from this clip. Name "
    "them only when you are sure; judge the risk from what happens, not from who it seems "
    "to be:"
)

_RISK_GUIDE = (
    "risk_level: low = routine or expected (residents, deliveries, passers-by, animals); "
    "medium = unusual or unclear and worth a look (lingering, checking doors or windows, "
    "an unfamiliar person at night); high = a likely threat (forced entry, theft, "
    "vandalism, a weapon, someone hiding)."
)


def build_messages(
    config: OpenAIAnalyzerConfig,
    context: AnalysisContext,
    filter_result: FilterResult,
    frames: Sequence[EncodedFrame],
    duration_s: float | None,
    references: Sequence[Reference] = (),
) -> list[Message]:
    """The chat-completions `messages` for one clip."""
    content: list[Message] = [
        {"type": "text", "text": clip_description(context, filter_result, duration_s)}
    ]
    if references:
        content.append({"type": "text", "text": _REFERENCES_INTRO})
    for reference in references:
        entity = reference.entity
        about = f": {entity.description}" if entity.description else ""
        content.append({"type": "text", "text": f"Reference picture of {entity.name}{about}"})
        content.append(
            {"type": "image_url", "image_url": {"url": reference.data_url, "detail": "low"}}
        )
    if references:
        content.append({"type": "text", "text": "The clip's frames:"})
    for frame in frames:
        content.append({"type": "text", "text": f"Frame at {frame.time_s:.1f} s:"})
        content.append(
            {
                "type": "image_url",
                "image_url": {"url": frame.data_url, "detail": config.image_detail},
            }
        )
    return [
        {"role": "system", "content": system_prompt(config)},
        {"role": "user", "content": content},
    ]


def correction_messages(reply: str | None, problem: str) -> list[Message]:
    """What to append to ask again after a reply that did not validate."""
    return [
        {"role": "assistant", "content": reply or ""},
        {
            "role": "user",
            "content": f"That reply cannot be used: {problem}. Reply again with only the "
            "JSON object described in the instructions, nothing else.",
        },
    ]


def system_prompt(config: OpenAIAnalyzerConfig) -> str:
    descriptions = {**DEFAULT_ACTIVITY_DESCRIPTIONS, **config.activity_descriptions}
    activities = "\n".join(
        f"- {name}: {descriptions[name]}" if name in descriptions else f"- {name}"
        for name in config.activity_types
    )
    return "\n\n".join(
        [
            (config.base_prompt or DEFAULT_BASE_PROMPT).strip(),
            _RISK_GUIDE,
            "activity_type is exactly one of:\n" + activities,
            "Reply with one JSON object and nothing else, with these fields: risk_level "
            '("low", "medium" or "high"), activity_type (from the list above), summary (one '
            "or two plain sentences), entities_timeline (a list of {time_s, entity, action}: "
            "seconds from the clip start, who or what, what they do), requires_review (true "
            "when a person should look at the clip), confidence (0.0 to 1.0, how sure you "
            "are of risk_level and activity_type), known_entities (the names of the reference "
            "pictures, if any, whose person, vehicle or animal you recognise in the frames; "
            "name them in the summary too; else an empty list), only_known (true only when "
            "every person, vehicle and animal in the frames is one you named in "
            "known_entities; false when anyone or anything else is there, or you are unsure).",
        ]
    )


def clip_description(
    context: AnalysisContext, filter_result: FilterResult, duration_s: float | None
) -> str:
    """The facts about the clip that are not in its pixels."""
    when = _local(context.start_ts)
    length = f", lasting {duration_s:.0f} s" if duration_s else ""
    about = (
        f" About this camera: {context.camera_context.strip()}" if context.camera_context else ""
    )
    return (
        f"Camera: {context.camera_name}.{about} Recorded {when:%A} at {when:%H:%M} local "
        f"time ({_part_of_day(when.hour)}){length}. {_detections(filter_result)} "
        "The frames follow in time order."
    )


def _local(ts: datetime) -> datetime:
    # Naive timestamps are already local; aware ones are shown in the host's time zone.
    return ts.astimezone() if ts.tzinfo is not None else ts


def _part_of_day(hour: int) -> str:
    match hour:
        case h if 5 <= h < 12:
            return "morning"
        case h if 12 <= h < 17:
            return "afternoon"
        case h if 17 <= h < 22:
            return "evening"
        case _:
            return "night"


def _detections(filter_result: FilterResult) -> str:
    if filter_result.detections:
        seen = ", ".join(
            f"{d.class_name} (first at {d.first_seen_s:.1f} s, confidence {d.confidence:.2f})"
            for d in sorted(filter_result.detections, key=lambda d: d.first_seen_s)
        )
        return f"The object detector saw: {seen}."
    if filter_result.detected_classes:
        return f"The object detector saw: {', '.join(filter_result.detected_classes)}."
    return "The object detector saw none of its target objects."
