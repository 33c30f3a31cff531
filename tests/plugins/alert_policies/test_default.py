"""default alert policy: threshold, activity types, motion, per-camera overrides."""

from __future__ import annotations

from typing import Any

import pytest

from homesec.interfaces import RelevanceFilter
from homesec.models.enums import RiskLevel
from homesec.models.known import RecognisedEntity
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


MODES_CONFIG: dict[str, Any] = {
    "min_risk_level": "medium",
    "overrides": {"garage": {"min_risk_level": "high"}},
    "modes": {
        "home": {
            "ignore_known": True,
            "overrides": {"backyard": {"enabled": False}, "front_door": {"required_zones": []}},
        },
        "night": {"min_risk_level": "low"},
        "off": {"enabled": False},
    },
}


@pytest.mark.parametrize(
    ("mode", "camera", "risk", "notify", "reason"),
    [
        (None, "backyard", RiskLevel.MEDIUM, True, "risk_level=medium >= medium"),
        ("away", "backyard", RiskLevel.MEDIUM, True, "risk_level=medium >= medium"),
        ("home", "backyard", RiskLevel.HIGH, False, "alerts off for backyard (mode home)"),
        ("home", "front_door", RiskLevel.MEDIUM, True, "risk_level=medium >= medium (mode home)"),
        ("night", "backyard", RiskLevel.LOW, True, "risk_level=low >= low (mode night)"),
        # The camera's own override is more specific than a mode-wide setting.
        ("night", "garage", RiskLevel.MEDIUM, False, "risk_level=medium < high"),
        ("off", "front_door", RiskLevel.HIGH, False, "alerts off for front_door (mode off)"),
    ],
)
def test_a_modes_settings_apply_in_that_mode_only(
    mode: str | None, camera: str, risk: RiskLevel, notify: bool, reason: str
) -> None:
    # Given a policy with settings per mode, and per camera in a mode
    policy = load_alert_policy("default", MODES_CONFIG)

    # When it decides on a clip in a mode
    decision = policy.decide(camera, DETECTED, _analysis(risk), mode)

    # Then the mode's settings, layered under the camera's, made the decision
    assert decision.notify is notify
    assert decision.notify_reason.startswith(reason)


def test_alerts_on_and_required_zones_follow_the_mode() -> None:
    # Given the backyard off in mode home, and porch required at the door except at home
    config = {
        "required_zones": ["porch"],
        "modes": {"home": {"overrides": {"backyard": {"enabled": False}}, "required_zones": []}},
    }
    policy = load_alert_policy("default", config)
    assert isinstance(policy, RelevanceFilter)
    seen = _seen(SIDEWALK_PERSON)

    # When the policy is asked about the cameras in modes home and away
    on = {
        (c, m): policy.alerts_on(c, m) for c in ("backyard", "front_door") for m in ("home", "away")
    }
    at_home = policy.relevant("front_door", seen, "home")
    away = policy.relevant("front_door", seen, "away")

    # Then only the backyard at home is off, and the sidewalk counts at home only
    assert on == {
        ("backyard", "home"): False,
        ("backyard", "away"): True,
        ("front_door", "home"): True,
        ("front_door", "away"): True,
    }
    assert at_home.detections == [SIDEWALK_PERSON] and away.detections == []
    assert policy.zones_needed("front_door") == ["porch"]
    assert policy.modes_named() == ["home"]


def _known(risk: RiskLevel, only_known: bool) -> AnalysisResult:
    alice = RecognisedEntity(name="Alice", label="person")
    return _analysis(risk).model_copy(update={"known_entities": [alice], "only_known": only_known})


@pytest.mark.parametrize(
    ("analysis", "mode", "notify"),
    [
        (_known(RiskLevel.MEDIUM, only_known=True), "home", False),
        (_known(RiskLevel.MEDIUM, only_known=True), "away", True),
        # Someone else came with Alice: the VLM does not say "only known".
        (_known(RiskLevel.MEDIUM, only_known=False), "home", True),
        # Alice forcing the back door is still worth an alert.
        (_known(RiskLevel.HIGH, only_known=True), "home", True),
        # "Only known" without anyone recognised is a claim about nobody.
        (_analysis(RiskLevel.MEDIUM).model_copy(update={"only_known": True}), "home", True),
    ],
)
def test_ignore_known_keeps_a_clip_of_known_people_only_from_alerting(
    analysis: AnalysisResult, mode: str, notify: bool
) -> None:
    # Given ignore_known in mode home
    policy = load_alert_policy("default", {"modes": {"home": {"ignore_known": True}}})

    # When it decides on a clip in a mode
    decision = policy.decide("front_door", DETECTED, analysis, mode)

    # Then only a clip of known entities alone, below high risk, at home, is kept quiet
    assert decision.notify is notify
    if not notify:
        assert (
            decision.notify_reason == "only known entities seen (Alice), ignore_known (mode home)"
        )


@pytest.mark.parametrize(
    ("detected", "known", "notify"),
    [
        # The detector saw a person; the VLM recognised Alice alone.
        (["person"], [("Alice", "person")], False),
        # The detector also saw a car, which no recognised entity is: not "only known".
        (["person", "car"], [("Alice", "person")], True),
        (["person", "dog"], [("Alice", "person")], True),
        # The car is the household's own, recognised too.
        (["person", "car"], [("Alice", "person"), ("our van", "car")], False),
    ],
)
def test_ignore_known_does_not_take_only_known_when_the_detector_saw_more(
    detected: list[str], known: list[tuple[str, str]], notify: bool
) -> None:
    # Given ignore_known, and a VLM that says the clip holds only known entities
    policy = load_alert_policy("default", {"ignore_known": True})
    entities = [RecognisedEntity(name=name, label=label) for name, label in known]
    analysis = _analysis(RiskLevel.MEDIUM).model_copy(
        update={"known_entities": entities, "only_known": True}
    )
    seen = DETECTED.model_copy(update={"detected_classes": detected})

    # When it decides on a clip where the detector counted these classes
    decision = policy.decide("front_door", seen, analysis)

    # Then a class none of the recognised entities is contradicts the VLM: it alerts
    assert decision.notify is notify
