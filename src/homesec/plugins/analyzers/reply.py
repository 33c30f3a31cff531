"""The analysis the model must reply with: its JSON schema, how it is asked for, how it is read.

The reply is untrusted input. `parse_reply` finds the JSON object in it (bare, inside a
```json fence, or with prose around it), validates it with Pydantic and maps an activity type
outside the configured list to `unknown`. Anything else wrong raises `ReplyError`, whose
message is written for the model, so it can be sent back to ask for a corrected reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from homesec.models.enums import RiskLevel
from homesec.models.known import KnownEntity, RecognisedEntity
from homesec.models.results import AnalysisResult

UNKNOWN_ACTIVITY = "unknown"
SCHEMA_NAME = "clip_analysis"

# The stdlib decoder recurses once per nesting level; a hostile reply must not crash the stage.
_TOO_DEEP = "the reply's JSON is nested too deeply"
_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class ResponseFormat(StrEnum):
    """How structured output is asked for (`response_format` of chat completions)."""

    AUTO = "auto"
    """json_schema first, then json_object, then text, as far as the server accepts."""
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    TEXT = "text"
    """No response_format: the prompt alone asks for JSON."""


class ReplyError(ValueError):
    """The model's reply is not a usable analysis; the message says why, for the model."""


class _TimelineEntry(BaseModel):
    # Finite numbers only: the analysis is stored as JSON, which has no Infinity or NaN.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, allow_inf_nan=False)

    # Models asked in plain text sometimes shorten the field name.
    time_s: float = Field(ge=0.0, validation_alias=AliasChoices("time_s", "time", "t"))
    entity: str = Field(min_length=1)
    action: str = Field(min_length=1)


class _Reply(BaseModel):
    """The reply as the model writes it; extra keys are ignored, not fatal."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, allow_inf_nan=False)

    risk_level: RiskLevel
    activity_type: str
    summary: str = Field(min_length=1)
    entities_timeline: list[_TimelineEntry] = Field(default_factory=list)
    requires_review: bool = False
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    known_entities: list[str] = Field(default_factory=list)
    only_known: bool = False


def analysis_schema(activity_types: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the reply, valid for OpenAI's strict structured outputs."""
    timeline_entry = _strict_object(
        {
            "time_s": {"type": "number", "description": "Seconds from clip start"},
            "entity": {"type": "string"},
            "action": {"type": "string"},
        }
    )
    return _strict_object(
        {
            "risk_level": {"type": "string", "enum": [level.label for level in RiskLevel]},
            "activity_type": {"type": "string", "enum": list(activity_types)},
            "summary": {"type": "string", "description": "One or two plain sentences"},
            "entities_timeline": {"type": "array", "items": timeline_entry},
            "requires_review": {"type": "boolean"},
            "confidence": {"type": "number", "description": "0.0 to 1.0"},
            "known_entities": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Names of the reference pictures recognised in the clip",
            },
            "only_known": {
                "type": "boolean",
                "description": "Everyone and everything of note is a recognised reference",
            },
        }
    )


def response_format_param(mode: ResponseFormat, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The `response_format` request field for `mode` (None: leave the field out)."""
    match mode:
        case ResponseFormat.JSON_SCHEMA | ResponseFormat.AUTO:
            return {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema},
            }
        case ResponseFormat.JSON_OBJECT:
            return {"type": "json_object"}
        case ResponseFormat.TEXT:
            return None


def parse_reply(
    text: str | None, activity_types: Sequence[str], known: Sequence[KnownEntity] = ()
) -> AnalysisResult:
    """The validated analysis in a reply (without `model` and `usage`); raises `ReplyError`.
    Only names of `known` entities are kept in `known_entities` (spelled as configured)."""
    data = _json_object(text)
    try:
        reply = _Reply.model_validate(data)
    except ValidationError as exc:
        raise ReplyError(_describe(exc)) from exc
    activity = _known_activity(reply.activity_type, activity_types)
    by_name = {entity.name.casefold(): entity for entity in known}
    named = [by_name[n.casefold()] for n in reply.known_entities if n.casefold() in by_name]
    recognised = [RecognisedEntity(name=e.name, label=e.label) for e in dict.fromkeys(named)]
    # "Only known" without a name we know of is a claim about nobody: not taken.
    only_known = reply.only_known and bool(recognised)
    return AnalysisResult.model_validate(
        {
            **reply.model_dump(),
            "activity_type": activity,
            "known_entities": recognised,
            "only_known": only_known,
        }
    )


def extract_json(text: str) -> str:
    """The JSON object in a reply: fenced, bare, or the first `{...}` amid prose."""
    for fenced in _FENCED.finditer(text):
        block = fenced.group(1).strip()
        if block.startswith("{"):
            return block
    decoder = json.JSONDecoder()
    first_error: ValueError | None = None
    for match in re.finditer(r"\{", text):
        try:
            _, end = decoder.raw_decode(text, match.start())
        except RecursionError as exc:
            raise ReplyError(_TOO_DEEP) from exc
        except ValueError as exc:  # a JSONDecodeError, or an integer too long to convert
            first_error = first_error or exc
            continue
        return text[match.start() : end]
    if first_error is not None:
        raise ReplyError(f"the reply is not valid JSON ({first_error})") from first_error
    raise ReplyError("the reply holds no JSON object")


def _json_object(text: str | None) -> object:
    if not text or not text.strip():
        raise ReplyError("the reply is empty")
    candidate = extract_json(text)
    try:
        return json.loads(candidate)
    except RecursionError as exc:
        raise ReplyError(_TOO_DEEP) from exc
    except ValueError as exc:
        raise ReplyError(f"the reply is not valid JSON ({exc})") from exc


def _known_activity(value: str, activity_types: Sequence[str]) -> str:
    # Forgive case and separators ("Person at door"); anything else is not ours to invent.
    normalized = re.sub(r"[\s\-]+", "_", value.strip().lower())
    return normalized if normalized in activity_types else UNKNOWN_ACTIVITY


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "reply"
        problems.append(f"{where}: {error['msg']}")
    return "the JSON does not match the required fields: " + "; ".join(problems)


def _strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    # Strict mode wants every property required and no other allowed.
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
