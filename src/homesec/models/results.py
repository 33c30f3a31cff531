"""What the stages produce: upload outcome, detections, VLM analysis."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from homesec.models.enums import ActionRefusal, IngestRefusalReason, RiskLevel
from homesec.models.known import RecognisedEntity
from homesec.models.zones import Zones


class UploadOutcome(BaseModel):
    """Where the storage backend put a clip or an artifact."""

    storage_uri: str
    view_url: str | None = None


Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in pixels of the original frame."""


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


class Place(BaseModel):
    """Where a class was seen in a clip, and in how many of the sampled frames."""

    box: Box
    frames: int = Field(ge=1)


class Detection(BaseModel):
    """The first sighting of one class in a clip, and every place it was seen."""

    class_name: str
    confidence: float = Field(ge=0.0, le=1.0)
    first_seen_s: float = Field(ge=0.0, description="Seconds from the clip start")
    box: Box = Field(description="x1, y1, x2, y2 in pixels of the original frame")
    zones: list[str] = Field(default_factory=list, description="Named zones it was seen in")
    stationary: bool = Field(
        default=False, description="It stands where it stood in the camera's earlier clips"
    )
    places: list[Place] = Field(
        default_factory=list,
        description="The distinct places (boxes apart) the class was seen in, with how many "
        "sampled frames each; empty when the detector does not say",
    )


class FilterResult(BaseModel):
    """Object detector verdict for one clip."""

    detected_classes: list[str]
    confidence: float = Field(ge=0.0, le=1.0, description="Best confidence among detections")
    sampled_frames: int = Field(ge=0)
    model: str
    detections: list[Detection] = Field(default_factory=list)

    def keeping(self, detections: list[Detection]) -> FilterResult:
        """The same verdict, with only `detections` (classes and confidence follow them)."""
        return self.model_copy(
            update={
                "detected_classes": list(dict.fromkeys(d.class_name for d in detections)),
                "confidence": max((d.confidence for d in detections), default=0.0),
                "detections": detections,
            }
        )


class FilterOverrides(BaseModel):
    """Per-call changes to a filter's configured behaviour (the model cannot change)."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str] | None = None
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    zones: Zones | None = Field(
        default=None, description="The camera's zones: each detection lists those it was in"
    )
    full_scan: bool | None = Field(
        default=None,
        description="Look at every sampled frame and list every place (stationary objects)",
    )


class EntityEvent(BaseModel):
    """One line of the VLM's timeline of what happened in the clip."""

    time_s: float = Field(ge=0.0)
    entity: str
    action: str


class VLMUsage(BaseModel):
    """Cost telemetry of one VLM call."""

    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    estimated_cost_usd: float | None = None


class AnalysisResult(BaseModel):
    """Structured VLM output, validated at the boundary."""

    risk_level: RiskLevel
    activity_type: str
    summary: str
    entities_timeline: list[EntityEvent] = Field(default_factory=list)
    requires_review: bool = False
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    known_entities: list[RecognisedEntity] = Field(
        default_factory=list, description="Known entities the model recognised in the clip"
    )
    only_known: bool = Field(
        default=False,
        description="Every person, vehicle and animal in the clip is a recognised known entity",
    )
    model: str | None = None
    provider: str | None = Field(
        default=None, description="Which of the configured VLMs answered (with fallbacks)"
    )
    usage: VLMUsage | None = None


class AnalysisUnavailable(BaseModel):
    """The VLM should have looked at the clip but failed: why, and what the detector saw."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(description="Why, in a few words (the analyzer's own error)")
    trigger_classes: list[str] = Field(
        default_factory=list, description="Trigger classes the detector found in the clip"
    )


class ActionRefused(BaseModel):
    """An action on a clip (delete, analyse again) not carried out, or not wholly, and why."""

    reason: ActionRefusal
    message: str


class IngestRefusal(BaseModel):
    """A clip sent to the HTTP ingest that was not taken, and why (nothing of it is kept)."""

    reason: IngestRefusalReason
    message: str
