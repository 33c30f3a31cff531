"""Reading the model's reply: finding the JSON, validating it, what is sent back when wrong."""

from __future__ import annotations

import json

import pytest

from homesec.models.enums import RiskLevel
from homesec.plugins.analyzers.reply import (
    ReplyError,
    ResponseFormat,
    analysis_schema,
    extract_json,
    parse_reply,
    response_format_param,
)
from tests.services.openai_server import VALID_ANALYSIS

TYPES = ["delivery", "person_at_door", "unknown"]


def test_json_amid_prose_is_found() -> None:
    # Given a reply with prose, braces in the prose, then the object
    text = 'Sure {thinking}. Result: {"a": {"b": 1}} Hope that helps!'

    # When the JSON is extracted
    found = extract_json(text)

    # Then it is the first complete object
    assert json.loads(found) == {"a": {"b": 1}}


def test_fenced_json_wins_over_braces_outside_it() -> None:
    # Given a reply that mentions {braces} before a ```json fence
    text = 'The format is {risk_level, ...}:\n```json\n{"risk_level": "low"}\n```\n'

    # When the JSON is extracted
    # Then the fenced block is taken
    assert json.loads(extract_json(text)) == {"risk_level": "low"}


def test_activity_type_is_matched_forgiving_case_and_spaces() -> None:
    # Given a reply that writes the activity type as words
    text = json.dumps({**VALID_ANALYSIS, "activity_type": "Person at-door", "risk_level": "HIGH"})

    # When it is parsed
    analysis = parse_reply(text, TYPES)

    # Then the configured name and the risk level are recognised
    assert analysis.activity_type == "person_at_door"
    assert analysis.risk_level is RiskLevel.HIGH


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "the reply is empty"),
        ("I cannot tell.", "holds no JSON object"),
        ('{"risk_level": "low",', "not valid JSON"),
        (json.dumps({**VALID_ANALYSIS, "confidence": 85}), "confidence"),
        (json.dumps({"summary": "x"}), "risk_level"),
    ],
)
def test_unusable_replies_say_what_is_wrong(text: str | None, problem: str) -> None:
    # Given a reply that cannot become an analysis
    # When it is parsed
    # Then the error says why, in words the model can act on
    with pytest.raises(ReplyError, match=problem):
        parse_reply(text, TYPES)


def test_the_schema_describes_what_the_parser_accepts() -> None:
    # Given the schema sent to the server
    schema = analysis_schema(TYPES)

    # When a reply holding exactly its required fields is parsed
    analysis = parse_reply(json.dumps(VALID_ANALYSIS), TYPES)

    # Then they agree, and the schema is strict-mode ready
    assert set(schema["required"]) == set(schema["properties"]) == set(VALID_ANALYSIS)
    assert analysis.summary == VALID_ANALYSIS["summary"]
    item = schema["properties"]["entities_timeline"]["items"]
    assert item["additionalProperties"] is False
    assert set(item["required"]) == set(item["properties"])


def test_text_mode_sends_no_response_format() -> None:
    # Given the schema
    schema = analysis_schema(TYPES)

    # When the request field is built for each mode
    # Then text leaves it out and the others name their type
    assert response_format_param(ResponseFormat.TEXT, schema) is None
    assert response_format_param(ResponseFormat.JSON_OBJECT, schema) == {"type": "json_object"}
    json_schema = response_format_param(ResponseFormat.JSON_SCHEMA, schema)
    assert json_schema is not None and json_schema["type"] == "json_schema"
