"""The `openai` SDK's errors in our words: a log line with the server's reason, and a few words
for alerts ("HTTP 500", "no answer in time", "cannot connect", "not a chat completion")."""

from __future__ import annotations

from openai import APIConnectionError, APIStatusError, APITimeoutError

from homesec.plugins.analyzers.chat import ChatProtocolError


def describe_failure(exc: BaseException) -> str:
    """For the log and the stage journal: "HTTP 500: <the server's message>"."""
    match exc:
        case APIStatusError():
            return f"HTTP {exc.status_code}: {_server_message(exc)}"
        case APITimeoutError():
            return f"no answer in time ({_cause(exc)})"
        case APIConnectionError():
            return f"connection failed ({_cause(exc)}: {exc.__cause__ or exc})"
        case _:
            return f"{type(exc).__name__}: {exc}"


def summarize_failure(exc: BaseException) -> str:
    """A few words for a person (no address, no server text)."""
    match exc:
        case APIStatusError():
            return f"HTTP {exc.status_code}"
        case APITimeoutError():
            return "no answer in time"
        case APIConnectionError():
            return "cannot connect"
        case ChatProtocolError():
            return "not a chat completion"
        case _:
            return type(exc).__name__


def _server_message(exc: APIStatusError) -> str:
    """The message of an OpenAI-style error body (the SDK unwraps `error`), or the body's start."""
    match exc.body:
        case {"message": str(message)}:
            return message
        case str(message):
            return message[:300]
    return exc.response.text[:300]


def _cause(exc: APIConnectionError) -> str:
    """The transport's error under the SDK's (ReadTimeout, ConnectError...)."""
    return type(exc.__cause__ or exc).__name__
