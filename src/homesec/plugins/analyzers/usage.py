"""What one clip's VLM exchange cost: tokens, model time, estimated price, the `vlm_usage` event.

A clip may take more than one request (a format fallback, a corrected reply, HTTP retries):
the meter adds them all up, because all of them are paid for and waited on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from homesec.interfaces import AnalysisContext
from homesec.models.enums import EventType
from homesec.models.results import VLMUsage
from homesec.plugins.analyzers.chat import ChatReply

logger = logging.getLogger(__name__)


@dataclass
class UsageMeter:
    """Token counts and model time of one clip's requests."""

    model: str
    """The configured model name, replaced by the one the server reports, when it does."""
    input_per_1m: float | None
    """USD per million input tokens; with neither price known there is no estimate."""
    output_per_1m: float | None
    input_tokens: int = 0
    output_tokens: int = 0
    model_s: float = 0.0
    replies: int = 0

    def add(self, reply: ChatReply) -> None:
        if reply.usage is not None:
            self.input_tokens += reply.usage.prompt_tokens
            self.output_tokens += reply.usage.completion_tokens
        self.replies += 1
        self.model = reply.model or self.model

    def usage(self) -> VLMUsage:
        cost = None
        if self.input_per_1m is not None or self.output_per_1m is not None:
            spent = (self.input_per_1m or 0.0) * self.input_tokens
            spent += (self.output_per_1m or 0.0) * self.output_tokens
            cost = spent / 1_000_000
        return VLMUsage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            latency_s=round(self.model_s, 3),
            estimated_cost_usd=cost,
        )

    def log(self, context: AnalysisContext, *, frames: int, outcome: str) -> None:
        """The one `vlm_usage` event of a clip (also when its analysis failed: it was paid for)."""
        usage = self.usage()
        logger.info(
            "VLM %s: %d input / %d output tokens, %.2f s",
            self.model,
            usage.input_tokens,
            usage.output_tokens,
            usage.latency_s,
            extra={
                "event_type": EventType.VLM_USAGE,
                "camera_name": context.camera_name,
                "clip_id": context.clip_id,
                "model": self.model,
                **usage.model_dump(),
                "frames": frames,
                "outcome": outcome,
            },
        )
