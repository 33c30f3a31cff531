"""A daily limit on the VLM (`vlm.budget`): calls, or their estimated cost. Once the day's
limit is reached, a system alert says so (once that day) and clips are alerted on their
detection alone, their `notify_reason` saying the analysis was left out for the budget, until
the day turns. The day's tally is kept in the state database, so a restart does not reset it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from homesec.models.alert import SystemAlert
from homesec.models.config import VLMBudget
from homesec.models.enums import SettingKey, SystemAlertKind
from homesec.models.events import utc_now
from homesec.models.results import VLMUsage
from homesec.repository.clip_repository import ClipRepository

logger = logging.getLogger(__name__)


class _Tally(BaseModel):
    day: date
    calls: int = 0
    cost_usd: float = 0.0
    alerted: bool = False


class DailyBudget:
    def __init__(
        self,
        config: VLMBudget,
        repository: ClipRepository,
        system_alert: Callable[[SystemAlert], Awaitable[bool]],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._repository = repository
        self._system_alert = system_alert
        self._clock = clock
        self._zone: tzinfo | None = ZoneInfo(config.timezone) if config.timezone else None
        self._tally = _Tally(day=self._today())

    async def start(self) -> None:
        stored = await self._repository.load_setting(SettingKey.VLM_BUDGET)
        if stored is None or stored.document is None:
            return
        try:
            tally = _Tally.model_validate(stored.document)
        except ValidationError as exc:
            logger.error("The stored VLM budget tally is unreadable, starting afresh: %s", exc)
            return
        if tally.day == self._today():
            self._tally = tally

    def exhausted(self) -> str | None:
        """Why the VLM may not be asked today, or None."""
        tally = self._current()
        limit_calls, limit_cost = self._config.max_calls_per_day, self._config.max_cost_usd_per_day
        if limit_calls is not None and tally.calls >= limit_calls:
            return f"daily VLM budget reached: {tally.calls} calls"
        if limit_cost is not None and tally.cost_usd >= limit_cost:
            return f"daily VLM budget reached: ${tally.cost_usd:.2f}"
        return None

    async def spent(self, usage: VLMUsage | None) -> None:
        """One VLM call was made (its usage, when it answered)."""
        tally = self._current()
        tally.calls += 1
        tally.cost_usd += (usage.estimated_cost_usd or 0.0) if usage is not None else 0.0
        reason = self.exhausted()
        if reason is not None and not tally.alerted:
            tally.alerted = True
            message = f"{reason}; clips alert on their detection alone until the day turns"
            alert = SystemAlert(
                kind=SystemAlertKind.VLM_BUDGET_REACHED, message=message, ts=utc_now()
            )
            await self._system_alert(alert)
        await self._repository.save_setting(SettingKey.VLM_BUDGET, tally.model_dump(mode="json"))

    def _current(self) -> _Tally:
        today = self._today()
        if self._tally.day != today:
            self._tally = _Tally(day=today)
        return self._tally

    def _today(self) -> date:
        return self._clock().astimezone(self._zone).date()
