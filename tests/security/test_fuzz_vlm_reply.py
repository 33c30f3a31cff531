"""Fuzzing the VLM reply parser: whatever a model (or a hostile server) writes, the parser
returns a validated, storable analysis or raises ReplyError, and nothing else."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from homesec.models.results import AnalysisResult
from homesec.plugins.analyzers.prompt import correction_messages
from homesec.plugins.analyzers.reply import ReplyError, parse_reply
from tests.security.fuzzing import FUZZ
from tests.services.openai_server import VALID_ANALYSIS

# Hypothesis tries 200 replies.
pytestmark = pytest.mark.slow

TYPES = ["delivery", "person_at_door", "unknown"]

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["low", "HIGH", "medium", "delivery", "Person at door", ""]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4)
    ),
    max_leaves=20,
)
_reply_keys = st.sampled_from([*VALID_ANALYSIS, "time", "t", "time_s", "entity", "action"])
# The right shape with any field replaced by a value of any type, or dropped.
_mutated_reply = st.builds(
    lambda changes, dropped: {
        key: value for key, value in {**VALID_ANALYSIS, **changes}.items() if key not in dropped
    },
    st.dictionaries(_reply_keys, _json_values, max_size=4),
    st.sets(_reply_keys, max_size=3),
)
_timeline_entry = st.fixed_dictionaries(
    {"time_s": _json_values, "entity": _json_values, "action": _json_values}
)
_with_odd_timeline = st.builds(
    lambda entries: {**VALID_ANALYSIS, "entities_timeline": entries},
    st.lists(_timeline_entry, max_size=3),
)


def _dump(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


_json_text = st.one_of(_json_values, _mutated_reply, _with_odd_timeline).map(_dump)
_wrappers = st.sampled_from(
    [
        "{}",
        "```json\n{}\n```",
        "```\n{}```",
        "Sure! Here it is: {} Hope it helps {{",
        "{{not json}} then {}",
        "{}```",
        "```json\n{}",
    ]
)
_nesting = st.builds(
    lambda opener, closer, depth: opener * depth + closer * depth,
    st.sampled_from(['{"a":', "[", '{"risk_level":[']),
    st.sampled_from(["1}", "]", "]}", ""]),
    st.integers(min_value=1, max_value=50_000),
)
_replies = st.one_of(
    st.none(),
    st.text(),
    st.builds(str.format, _wrappers, _json_text),
    _json_text.map(lambda text: text[: len(text) // 2]),  # cut off at max_tokens
    _nesting,
    st.integers(min_value=4300, max_value=20_000).map(
        lambda digits: _dump({**VALID_ANALYSIS, "confidence": 0}).replace(
            '"confidence": 0', '"confidence": ' + "9" * digits
        )
    ),
)


def _is_storable(result: AnalysisResult) -> bool:
    numbers = [entry.time_s for entry in result.entities_timeline]
    numbers += [result.confidence] if result.confidence is not None else []
    return all(math.isfinite(number) for number in numbers)


@settings(FUZZ, max_examples=300)  # cheap examples: more of them
@given(reply=_replies)
@example(reply='{"a":' * 5000 + "1" + "}" * 5000)
@example(reply=_dump({**VALID_ANALYSIS, "confidence": 0}).replace(": 0}", ": " + "1" * 5000 + "}"))
@example(
    reply=_dump(
        {
            **VALID_ANALYSIS,
            "entities_timeline": [{"time_s": math.inf, "entity": "a", "action": "b"}],
        }
    )
)
@example(reply=_dump({**VALID_ANALYSIS, "confidence": math.nan}))
def test_any_reply_is_a_valid_analysis_or_a_reply_error(reply: str | None) -> None:
    # Given any reply text a model could send
    # When it is parsed
    try:
        result = parse_reply(reply, TYPES)
    except ReplyError as error:
        # Then the error explains itself, and the request asking the model again can be sent
        retry = correction_messages(reply, str(error))
        request = httpx.Request("POST", "http://vlm.invalid/v1/chat/completions", json=retry)
        assert str(error) in json.loads(request.content)[-1]["content"]
        return
    # Then an accepted reply is a complete analysis that can be stored as JSON
    assert result.activity_type in TYPES
    assert result.summary.strip()
    assert _is_storable(result)
    assert AnalysisResult.model_validate_json(result.model_dump_json()) == result
