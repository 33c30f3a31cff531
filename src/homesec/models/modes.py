"""Modes (home, away, night...): which are configured, their weekly schedule, and the state
HomeSec is in (the mode and the cameras whose alerts a person switched off)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from homesec.models.enums import ModeSetter, Weekday

MODE_NAME = r"^[a-z0-9_]{1,32}$"


def check_timezone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name: Europe/Berlin)") from None
    return name


class ModeChange(BaseModel):
    """One point of the weekly schedule: at this time of day, on these days, the mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: time = Field(description="Time of day, HH:MM, in the schedule's time zone")
    mode: str = Field(pattern=MODE_NAME, description="The mode from then on")
    days: list[Weekday] = Field(
        default_factory=lambda: list(Weekday),
        min_length=1,
        description="Days it applies (mon..sun); default every day",
    )


class ModesConfig(BaseModel):
    """The configured modes; none (the default) means the alert policy alone decides."""

    model_config = ConfigDict(extra="forbid")

    names: list[Annotated[str, Field(pattern=MODE_NAME)]] = Field(
        default_factory=list,
        description="The modes (lowercase letters, digits, _); at the very first start, the "
        "schedule's last change, else the first",
    )
    schedule: list[ModeChange] = Field(
        default_factory=list,
        description="Weekly mode changes; a mode set by hand holds until the next one",
    )
    timezone: Annotated[str | None, AfterValidator(check_timezone)] = Field(
        default=None, description="Time zone of the schedule (default: the machine's)"
    )

    @model_validator(mode="after")
    def _known_modes(self) -> ModesConfig:
        if len(set(self.names)) < len(self.names):
            raise ValueError("modes.names must be unique")
        unknown = sorted({c.mode for c in self.schedule} - set(self.names))
        if unknown:
            raise ValueError(f"modes.schedule uses modes not in modes.names: {', '.join(unknown)}")
        return self


class ModeState(BaseModel):
    """The mode in effect, who set it and when, and the cameras switched off by hand."""

    model_config = ConfigDict(frozen=True)

    mode: str
    set_at: datetime
    set_by: ModeSetter
    alerts_off: list[str] = Field(
        default_factory=list, description="Cameras whose alerts are switched off in every mode"
    )

    def alerts_on(self, camera_name: str) -> bool:
        return camera_name not in self.alerts_off


class ModeRefused(BaseModel):
    """A mode change that was not made, and why (an unknown mode or camera)."""

    reason: str
