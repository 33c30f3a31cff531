"""default alert policy: threshold, activity types, motion, per-camera overrides."""

from __future__ import annotations

from typing import Any

import pytest

from homesec.models.enums import RiskLevel
from homesec.models.results import AnalysisResult, FilterResult
from homesec.plugins.registry import load_alert_policy

DETECTED = FilterResult(detected_classes=["person"], confidence=0.8, sampled_frames=3, model="m")
CONFIG: dict[str, Any] = {
    "min_risk_level": "medium",
    "notify_on_activity_types": ["break_in"],
    "overrides": {
        "front_door": {"min_risk_level": "low", "notify_on_activity_types": ["delivery"]},
        "garage": {"notify_on_motion": True},
    },
}


def _analysis(risk: RiskLevel, activity: str = "walking") -> AnalysisResult:
    return AnalysisResult(risk_level=risk, activity_type=activity, summary="s")


@pytest.mark.parametrize(
    ("camera", "analysis", "notify", "reason"),
    [
        ("backyard", _analysis(RiskLevel.HIGH), True, "risk_level=high >= medium"),
        ("backyard", _analysis(RiskLevel.MEDIUM), True, "risk_level=medium >= medium"),
        ("backyard", _analysis(RiskLevel.LOW), False, "risk_level=low < medium"),
        ("backyard", _analysis(RiskLevel.LOW, "break_in"), True, "activity_type=break_in"),
        ("front_door", _analysis(RiskLevel.LOW), True, "risk_level=low >= low (per-camera)"),
        ("front_door", None, False, "VLM skipped and notify_on_motion off"),
        ("garage", None, True, "notify_on_motion (per-camera)"),
        ("garage", _analysis(RiskLevel.LOW), True, "notify_on_motion (per-camera)"),
        ("backyard", None, False, "VLM skipped"),
    ],
)
def test_decisions_and_their_reasons(
    camera: str, analysis: AnalysisResult | None, notify: bool, reason: str
) -> None:
    # Given the default policy with overrides
    policy = load_alert_policy("default", CONFIG)

    # When it decides on a clip
    decision = policy.decide(camera, DETECTED, analysis)

    # Then the decision and a readable reason come back
    assert decision.notify is notify
    assert decision.notify_reason.startswith(reason)


def test_override_keeps_global_activity_types_when_not_set() -> None:
    # Given a camera override that only changes the risk level
    policy = load_alert_policy(
        "default",
        {"notify_on_activity_types": ["break_in"], "overrides": {"x": {"min_risk_level": "high"}}},
    )

    # When the global activity type shows up on that camera at low risk
    decision = policy.decide("x", DETECTED, _analysis(RiskLevel.LOW, "break_in"))

    # Then it still alerts
    assert decision.notify is True
