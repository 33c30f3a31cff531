"""What the household knows that the VLM should know too: a camera's context, and the
people, vehicles and pets it may recognise from reference pictures."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, FilePath

KNOWN_NAME = r"^[^\x00-\x1f]{1,64}$"


class KnownEntity(BaseModel):
    """A named reference picture: someone or something the household knows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=KNOWN_NAME, description="How the summary names it (Alice, our van)")
    image: FilePath = Field(description="A picture of it (JPEG or PNG), sent downscaled")
    label: str = Field(
        default="person",
        min_length=1,
        max_length=64,
        description="What the detector calls it (person, car, dog...)",
    )
    description: str | None = Field(
        default=None, max_length=200, description="A few words that help tell it apart"
    )


class RecognisedEntity(BaseModel):
    """A known entity the VLM recognised in a clip."""

    model_config = ConfigDict(frozen=True)

    name: str
    label: str
