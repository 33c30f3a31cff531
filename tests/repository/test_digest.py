"""The digest: what happened since the last one, told by the model or as a plain list, sent
at its time and when the mode turns home, retried until every sink has it and never twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from homesec.digest import Digests
from homesec.interfaces import DigestSink
from homesec.models.alert import AlertDecision, SystemAlert
from homesec.models.config import Config, StateStoreConfig, VLMBudget
from homesec.models.digest import Digest, DigestConfig
from homesec.models.enums import DigestTrigger, ModeSetter, RiskLevel
from homesec.models.events import utc_now
from homesec.models.modes import ModesConfig
from homesec.models.results import AnalysisResult
from homesec.models.state import ClipStateData
from homesec.modes import Modes
from homesec.plugins.analyzers.openai import OpenAIAnalyzer
from homesec.plugins.registry import load_analyzer
from homesec.repository.clip_repository import ClipRepository
from homesec.vlm_budget import DailyBudget
from tests.repository.builders import new_state
from tests.services.openai_server import OpenAIServer, ScriptedReply

FAST = {"retry_s": 0.05, "at": None}


class Sink:
    """A notifier that takes digests, failing its first `fail_first` tries."""

    def __init__(self, name: str, fail_first: int = 0) -> None:
        self.name = name
        self.fail_first = fail_first
        self.tries = 0
        self.digests: list[Digest] = []

    async def send_digest(self, digest: Digest) -> None:
        self.tries += 1
        if self.tries <= self.fail_first:
            raise ConnectionError("smtp server down")
        self.digests.append(digest)


def _clip(camera: str, n: int, risk: RiskLevel, summary: str, alerted: bool) -> ClipStateData:
    state = new_state(f"{camera}_{1_800_000_000 + n}.mp4")
    state.start_ts = utc_now() - timedelta(hours=n)
    state.view_url = f"https://storage.example/{state.clip_id}"
    state.analysis_result = AnalysisResult(
        risk_level=risk, activity_type="delivery" if n == 1 else "passerby", summary=summary
    )
    state.alert_decision = AlertDecision(notify=alerted, notify_reason="test")
    return state


CLIPS = [
    _clip("front_door", 1, RiskLevel.MEDIUM, "A courier leaves a parcel.", alerted=True),
    _clip("front_door", 2, RiskLevel.LOW, "A neighbour walks past.", alerted=False),
    _clip("backyard", 3, RiskLevel.HIGH, "Someone tries the shed door.", alerted=True),
]


@asynccontextmanager
async def _digests(
    state_config: StateStoreConfig,
    sinks: list[Sink],
    writer: Any = None,
    clock: Callable[[], datetime] = utc_now,
    modes: Modes | None = None,
    **config: Any,
) -> AsyncIterator[tuple[Digests, ClipRepository]]:
    repository = ClipRepository.from_config(state_config)
    await repository.start()
    named: list[tuple[str, DigestSink]] = [(sink.name, sink) for sink in sinks]
    digests = Digests(
        DigestConfig(enabled=True, **{**FAST, **config}), repository, named, writer, clock=clock
    )
    if modes is not None:
        await modes.start()
        digests.follow_modes(modes)
    await digests.start()
    try:
        yield digests, repository
    finally:
        await digests.aclose()
        if modes is not None:
            await modes.aclose()
        await repository.aclose()


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_digest_without_a_model_is_a_plain_list_of_what_is_worth_a_look(
    state_config: StateStoreConfig,
) -> None:
    # Given three clips of the last hours, two of them alerted, and a sink
    sink = Sink("mail")
    async with _digests(state_config, [sink]) as (digests, repository):
        for state in CLIPS:
            assert await repository.save(state)

        # When a digest is asked for
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: len(sink.digests) == 1)

    # Then it counts the clips and alerts per camera and lists the alerted and risky ones,
    # the riskiest first, with their links
    [digest] = sink.digests
    assert (digest.clips, digest.alerts, digest.written_by) == (3, 2, "template")
    assert digest.per_camera == {"front_door": 2, "backyard": 1}
    assert [clip.summary for clip in digest.notable] == [
        "Someone tries the shed door.",
        "A courier leaves a parcel.",
    ]
    assert digest.notable[0].link == f"https://storage.example/{CLIPS[2].clip_id}"
    assert "3 clips, 2 alerts" in digest.text and "Someone tries the shed door." in digest.text


async def test_the_model_writes_the_digest_from_the_periods_summaries(
    state_config: StateStoreConfig, openai_server: OpenAIServer
) -> None:
    # Given the configured OpenAI-compatible model, and the three clips
    writer = load_analyzer("openai", {"base_url": openai_server.base_url, "model": "m"})
    assert isinstance(writer, OpenAIAnalyzer)
    openai_server.enqueue(ScriptedReply.completion("A parcel came; someone tried the shed."))
    sink = Sink("mqtt")
    async with _digests(state_config, [sink], writer) as (digests, repository):
        for state in CLIPS:
            assert await repository.save(state)

        # When a digest is asked for
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: len(sink.digests) == 1)
    await writer.aclose()

    # Then its text is the model's, asked about the period's clips with their summaries
    [digest] = sink.digests
    assert digest.text == "A parcel came; someone tried the shed."
    assert digest.written_by == "OpenAIAnalyzer"
    [request] = openai_server.requests
    assert "response_format" not in request.body
    material = request.body["messages"][1]["content"]
    assert "Clips: 3, alerts: 2" in material and "Someone tries the shed door." in material


async def test_a_model_that_keeps_failing_gives_the_plain_list_saying_so(
    state_config: StateStoreConfig, openai_server: OpenAIServer
) -> None:
    # Given a model that answers errors
    writer = load_analyzer(
        "openai", {"base_url": openai_server.base_url, "model": "m", "max_retries": 0}
    )
    openai_server.enqueue(*[ScriptedReply.error(500) for _ in range(3)])
    sink = Sink("mail")
    async with _digests(state_config, [sink], writer) as (digests, repository):
        assert await repository.save(CLIPS[0])

        # When a digest is asked for
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: len(sink.digests) == 1)
    await writer.aclose()

    # Then after three tries it goes out as the plain list, saying the summary failed
    [digest] = sink.digests
    assert digest.written_by == "template" and "could not be written" in digest.text
    assert len(openai_server.requests) == 3


async def test_a_failing_sink_is_tried_again_and_none_gets_it_twice_even_after_a_restart(
    state_config: StateStoreConfig,
) -> None:
    # Given two sinks, the e-mail one down for its first two tries
    mqtt, mail = Sink("mqtt"), Sink("mail", fail_first=2)
    async with _digests(state_config, [mqtt, mail]) as (digests, repository):
        assert await repository.save(CLIPS[0])

        # When a digest goes out, and HomeSec restarts twice
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: len(mail.digests) == 1)
    for _ in range(2):
        async with _digests(state_config, [mqtt, mail]):
            await asyncio.sleep(0.3)

    # Then each sink got it once, the e-mail on its third try
    assert (len(mqtt.digests), len(mail.digests), mail.tries) == (1, 1, 3)


async def test_a_digest_pending_at_a_crash_reaches_only_the_sinks_that_lack_it(
    state_config: StateStoreConfig,
) -> None:
    # Given a digest that reached MQTT while the mail server was down, then HomeSec stopped
    mqtt, down = Sink("mqtt"), Sink("mail", fail_first=1000)
    async with _digests(state_config, [mqtt, down]) as (digests, repository):
        assert await repository.save(CLIPS[0])
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: down.tries >= 1 and len(mqtt.digests) == 1)

    # When HomeSec starts again with the mail server back
    mail = Sink("mail")
    async with _digests(state_config, [mqtt, mail]):
        await _until(lambda: len(mail.digests) == 1)

    # Then the mail gets that same digest, MQTT does not get it again
    assert len(mqtt.digests) == 1
    assert mail.digests[0].period_end == mqtt.digests[0].period_end


async def test_the_next_digest_starts_where_the_last_ended(
    state_config: StateStoreConfig,
) -> None:
    # Given a digest sent
    sink = Sink("mqtt")
    async with _digests(state_config, [sink]) as (digests, repository):
        assert await repository.save(CLIPS[0])
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: len(sink.digests) == 1)

        # When a clip comes and another digest is asked for
        assert await repository.save(CLIPS[1])
        digests.send_now(DigestTrigger.SCHEDULE)
        await _until(lambda: len(sink.digests) == 2)

    # Then the second covers the time since the first: the new clip only
    first, second = sink.digests
    assert second.period_start == first.period_end
    assert second.clips == 1


async def test_the_daily_digest_goes_out_at_its_time(state_config: StateStoreConfig) -> None:
    # Given a clock that reads 07:59:59.5 (and moves on) and a digest every day at 08:00
    start = datetime(2026, 12, 8, 7, 59, 59, 500000).astimezone()
    began = time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=time.monotonic() - began)

    sink = Sink("mqtt")
    async with _digests(state_config, [sink], clock=clock, at="08:00"):
        # When the clock passes 08:00
        await _until(lambda: len(sink.digests) == 1, timeout_s=5)

    # Then the digest went out, for the day before
    [digest] = sink.digests
    assert digest.trigger == DigestTrigger.SCHEDULE
    assert digest.period_end >= start.replace(hour=8, minute=0, second=0, microsecond=0)
    assert digest.period_end - digest.period_start == timedelta(days=1)


async def test_coming_home_sends_what_happened_while_away(state_config: StateStoreConfig) -> None:
    # Given modes home and away, a digest on coming home, and HomeSec away
    sink = Sink("mqtt")
    repository = ClipRepository.from_config(state_config)
    await repository.start()
    modes = Modes(ModesConfig(names=["home", "away"]), ["front_door"], repository)
    async with _digests(state_config, [sink], modes=modes, on_mode="home"):
        await modes.set_mode("away", ModeSetter.API)
        await asyncio.sleep(0.2)
        away = len(sink.digests)

        # When the mode turns home
        await modes.set_mode("home", ModeSetter.MQTT)
        await _until(lambda: len(sink.digests) == 1)
    await repository.aclose()

    # Then going away sent nothing; coming home sent the digest
    assert away == 0
    assert sink.digests[0].trigger == DigestTrigger.MODE


def test_a_digest_on_a_mode_that_does_not_exist_is_a_config_error() -> None:
    # Given a config with modes home and away and a digest on an unknown mode
    # When it is validated
    # Then it is refused, naming the mode
    with pytest.raises(ValueError, match="holiday"):
        Config.model_validate(
            {
                "cameras": [{"name": "c", "source": {"backend": "local_folder"}}],
                "storage": {"backend": "local"},
                "filter": {"backend": "yolo"},
                "modes": {"names": ["home", "away"]},
                "digest": {"enabled": True, "on_mode": "holiday"},
            }
        )


async def test_a_spent_vlm_budget_gives_the_plain_list_without_asking_the_model(
    state_config: StateStoreConfig, openai_server: OpenAIServer
) -> None:
    # Given the model configured, and a VLM budget of one call a day already used
    writer = load_analyzer("openai", {"base_url": openai_server.base_url, "model": "m"})
    repository = ClipRepository.from_config(state_config)
    await repository.start()

    async def no_alert(alert: SystemAlert) -> bool:
        return True

    budget = DailyBudget(VLMBudget(max_calls_per_day=1), repository, no_alert)
    await budget.start()
    await budget.spent(None)
    sink = Sink("mail")
    named: list[tuple[str, DigestSink]] = [(sink.name, sink)]
    digests = Digests(DigestConfig(enabled=True, **FAST), repository, named, writer, budget=budget)
    assert await repository.save(CLIPS[0])
    await digests.start()

    # When a digest is asked for
    digests.send_now(DigestTrigger.SCHEDULE)
    await _until(lambda: len(sink.digests) == 1)
    await digests.aclose()
    await writer.aclose()
    await repository.aclose()

    # Then the plain list goes out, saying why, and the model was not asked
    assert sink.digests[0].written_by == "template"
    assert "daily VLM budget reached" in sink.digests[0].text
    assert openai_server.requests == []
