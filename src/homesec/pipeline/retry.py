"""The one retry policy of the pipeline: exponential backoff with jitter (tenacity)."""

from __future__ import annotations

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
)

from homesec.backoff import Jitter, exponential_wait
from homesec.errors import RetriesSpent
from homesec.models.config import RetryConfig


def retrying(config: RetryConfig) -> AsyncRetrying:
    """A fresh retry controller for one stage of one clip; re-raises the last error.

    Any error is tried again, except `RetriesSpent`: the plugin already did its retrying.
    """
    return AsyncRetrying(
        stop=stop_after_attempt(config.max_attempts),
        wait=exponential_wait(config.backoff_s, config.max_backoff_s, Jitter.ADDED),
        # Exception only: a cancelled clip (CancelledError) must stop at once.
        retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(RetriesSpent),
        reraise=True,
    )
