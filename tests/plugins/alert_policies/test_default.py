"""default alert policy: threshold, activity types, motion, per-camera overrides."""

from __future__ import annotations

from typing import Any

import pytest

from homesec.interfaces import RelevanceFilter
from homesec.models.enums import RiskLevel
from homesec.models.results import AnalysisResult, Detection, FilterResult
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


PORCH_PERSON = Detection(
    class_name="person", confidence=0.9, first_seen_s=1.0, box=(1, 2, 3, 4), zones=["porch"]
)
STREET_CAR = Detection(
    class_name="car", confidence=0.95, first_seen_s=0.0, box=(1, 2, 3, 4), zones=["street"]
)
SIDEWALK_PERSON = Detection(
    class_name="person", confidence=0.7, first_seen_s=2.0, box=(1, 2, 3, 4), zones=[]
)


def _seen(*detections: Detection) -> FilterResult:
    classes = list(dict.fromkeys(d.class_name for d in detections))
    best = max(d.confidence for d in detections)
    return FilterResult(
        detected_classes=classes,
        confidence=best,
        sampled_frames=5,
        model="m",
        detections=list(detections),
    )


def test_only_detections_in_the_required_zones_count() -> None:
    # Given required zones for the front door only
    policy = load_alert_policy(
        "default", {"overrides": {"front_door": {"required_zones": ["porch"]}}}
    )
    assert isinstance(policy, RelevanceFilter)
    seen = _seen(STREET_CAR, PORCH_PERSON)

    # When the detections that count are asked, on that camera and on another
    counted = policy.relevant("front_door", seen)
    elsewhere = policy.relevant("backyard", seen)

    # Then only the person on the porch counts there, and everything elsewhere
    assert counted.detected_classes == ["person"] and counted.detections == [PORCH_PERSON]
    assert counted.confidence == 0.9 and counted.sampled_frames == 5
    assert elsewhere == seen


def test_nothing_in_the_required_zones_is_no_alert_whatever_else_says_so() -> None:
    # Given required zones and notify_on_motion, and a clip with a person on the sidewalk only
    policy = load_alert_policy("default", {"required_zones": ["porch"], "notify_on_motion": True})
    assert isinstance(policy, RelevanceFilter)
    counted = policy.relevant("front_door", _seen(SIDEWALK_PERSON))

    # When it decides (the VLM was not asked: nothing counted)
    decision = policy.decide("front_door", counted, None)

    # Then there is no alert, and the reason names the zones
    assert decision.notify is False
    assert decision.notify_reason == "nothing detected in the required zones (porch)"


def test_notify_on_review_alerts_when_the_vlm_asks_for_a_review_whatever_the_risk() -> None:
    # Given a policy that alerts on high risk only, but on every review request at the door
    policy = load_alert_policy(
        "default",
        {"min_risk_level": "high", "overrides": {"front_door": {"notify_on_review": True}}},
    )
    asks = _analysis(RiskLevel.LOW).model_copy(update={"requires_review": True})

    # When a low-risk clip the VLM wants reviewed is decided at the door and elsewhere
    door = policy.decide("front_door", DETECTED, asks)
    elsewhere = policy.decide("backyard", DETECTED, asks)

    # Then the door alerts, saying why; elsewhere it does not
    assert door.notify is True and door.notify_reason == "the VLM asks for a review (per-camera)"
    assert elsewhere.notify is False


def test_a_result_without_boxes_is_not_emptied_by_required_zones() -> None:
    # Given required zones, and a detector result with classes but no boxes (a source
    # that gives none): zones cannot say anything about it
    policy = load_alert_policy("default", {"required_zones": ["porch"]})
    assert isinstance(policy, RelevanceFilter)

    # When the detections that count are asked
    counted = policy.relevant("front_door", DETECTED)

    # Then it is kept as it is (an alert too many beats one missed)
    assert counted == DETECTED
