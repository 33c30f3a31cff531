"""A full-text search as asked (`q=`): the words every match must hold, and the hours of
the day a time phrase ("after 6 pm", "before 8am", "between 6 pm and 9 pm") allows. Stop
words are left out, so "dog in the backyard" asks for "dog" and "backyard". The state store
indexes each clip's text with a token for the local hour it started in (`hour_token`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")
_TIME = r"(\d{1,2})(?::00)?\s*(am|pm)?"
_BETWEEN = re.compile(rf"\bbetween\s+{_TIME}\s+and\s+{_TIME}", re.IGNORECASE)
_AFTER_BEFORE = re.compile(rf"\b(after|before|at)\s+{_TIME}", re.IGNORECASE)
# The query's words that no clip is searched by ("dog in the backyard": dog, backyard).
_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "he",
        "her",
        "his",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "were",
        "with",
    }
)


def hour_token(hour: int) -> str:
    return f"hour{hour}"


@dataclass(frozen=True)
class SearchQuery:
    """The words every match must hold, and the hours of the day it may have started in."""

    words: tuple[str, ...]
    hours: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> SearchQuery:
        hours: set[int] | None = None
        for pattern, reader in ((_BETWEEN, _between), (_AFTER_BEFORE, _after_before)):
            for match in pattern.finditer(text):
                found = reader(match)
                if found is not None:
                    hours = found if hours is None else hours & found
            text = pattern.sub(" ", text)
        words = [w for w in _WORD.findall(text.casefold()) if w not in _STOP_WORDS]
        return cls(tuple(dict.fromkeys(words)), None if hours is None else tuple(sorted(hours)))

    @property
    def is_empty(self) -> bool:
        return not self.words and self.hours is None

    def fts5(self) -> str:
        """The FTS5 MATCH expression (words quoted: no query syntax gets through)."""
        parts = [f'"{word}"' for word in self.words]
        if self.hours is not None:
            parts.append(
                "(" + (" OR ".join(hour_token(h) for h in self.hours) or "hour_none") + ")"
            )
        return " AND ".join(parts)

    def tsquery(self) -> str:
        """The `to_tsquery` text (words are letters and digits only: no operator gets in)."""
        parts = list(self.words)
        if self.hours is not None:
            parts.append("(" + (" | ".join(hour_token(h) for h in self.hours) or "hour_none") + ")")
        return " & ".join(parts)


def _hour(number: str, meridiem: str | None) -> int | None:
    hour = int(number)
    if meridiem is None:
        return hour if hour < 24 else None
    if not 1 <= hour <= 12:
        return None
    return hour % 12 + (12 if meridiem.lower() == "pm" else 0)


def _after_before(match: re.Match[str]) -> set[int] | None:
    word, number, meridiem = match.groups()
    hour = _hour(number, meridiem)
    if hour is None:
        return None
    match word.lower():
        case "after":
            return set(range(hour, 24))
        case "before":
            return set(range(0, hour))
        case _:
            return {hour}


def _between(match: re.Match[str]) -> set[int] | None:
    first, first_meridiem, last, last_meridiem = match.groups()
    # "between 6 and 9 pm": the second's am/pm holds for the first too.
    start = _hour(first, first_meridiem or last_meridiem)
    end = _hour(last, last_meridiem)
    if start is None or end is None:
        return None
    return set(range(start, end)) if start <= end else set(range(start, 24)) | set(range(end))
