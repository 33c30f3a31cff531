"""`default` alert policy: risk threshold, activity types, motion, VLM failures, required
zones, known entities; per-camera overrides, and per-mode ones.

Settings are layered, the more specific winning: the policy's own, then the mode's, then
the camera's `overrides`, then the mode's own for the camera."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from homesec.interfaces import PluginConfig
from homesec.models.alert import AlertDecision
from homesec.models.enums import OnVLMFailure, PluginType, RiskLevel
from homesec.models.results import AnalysisResult, AnalysisUnavailable, FilterResult
from homesec.plugins.registry import plugin


class CameraAlertOverride(BaseModel):
    """Per-camera changes; a key left out keeps the global value."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(
        default=None,
        description="false: no VLM, no detection event and no alert (still recorded, uploaded)",
    )
    ignore_known: bool | None = Field(
        default=None,
        description="No alert for a clip the VLM says holds only known entities (unless high)",
    )
    min_risk_level: RiskLevel | None = Field(default=None, description="low, medium or high")
    notify_on_activity_types: list[str] | None = Field(
        default=None, description="Activity types that alert whatever the risk level"
    )
    notify_on_motion: bool | None = Field(
        default=None, description="Alert on every clip, even when the VLM was skipped"
    )
    on_vlm_failure: OnVLMFailure | None = Field(
        default=None, description="alert or skip a clip with a trigger class the VLM failed on"
    )
    required_zones: list[str] | None = Field(
        default=None, description="Only detections in one of these zones count (empty: all)"
    )
    notify_on_review: bool | None = Field(
        default=None, description="Alert when the VLM asks for a person to review the clip"
    )


class ModeAlertSettings(CameraAlertOverride):
    """What a mode changes: for every camera, and per camera in `overrides`."""

    overrides: dict[str, CameraAlertOverride] = Field(
        default_factory=dict, description="Per-camera changes in this mode"
    )


class DefaultAlertPolicyConfig(PluginConfig):
    enabled: bool = Field(
        default=True,
        description="false: no VLM, no detection event and no alert (set per camera and mode)",
    )
    ignore_known: bool = Field(
        default=False,
        description="No alert for a clip the VLM says holds only known entities (`vlm.known`), "
        "unless its risk is high or the detector counted a class none of them is",
    )
    min_risk_level: RiskLevel = Field(
        default=RiskLevel.MEDIUM, description="Alert when the VLM risk is at least this"
    )
    notify_on_activity_types: list[str] = Field(
        default_factory=list, description="Activity types that alert whatever the risk level"
    )
    notify_on_motion: bool = Field(
        default=False, description="Alert on every clip, even when the VLM was skipped"
    )
    on_vlm_failure: OnVLMFailure = Field(
        default=OnVLMFailure.ALERT,
        description="When the detector found a trigger class and the VLM failed: alert "
        "anyway, saying the analysis is unavailable and why, or skip (no alert unless "
        "notify_on_motion)",
    )
    notify_on_review: bool = Field(
        default=False,
        description="Alert whenever the VLM asks for a person to review the clip, whatever "
        "the risk level",
    )
    required_zones: list[str] = Field(
        default_factory=list,
        description="Only detections in one of these zones (the camera's `zones`) trigger "
        "the VLM, the detection event and an alert; empty: every detection counts",
    )
    overrides: dict[str, CameraAlertOverride] = Field(
        default_factory=dict, description="Per-camera overrides, keyed by camera name"
    )
    modes: dict[str, ModeAlertSettings] = Field(
        default_factory=dict, description="Per-mode changes, keyed by mode name (`modes.names`)"
    )


@plugin(PluginType.ALERT_POLICY, "default", config=DefaultAlertPolicyConfig)
class DefaultAlertPolicy:
    def __init__(self, config: DefaultAlertPolicyConfig) -> None:
        self._config = config

    def relevant(
        self, camera_name: str, filter_result: FilterResult, mode: str | None = None
    ) -> FilterResult:
        """The detections in the camera's required zones (all of them when there are none)."""
        required = set(self._for(camera_name, mode).required_zones)
        if not required or not filter_result.detections:
            return filter_result  # no boxes (a source without them): zones cannot say
        return filter_result.keeping(
            [d for d in filter_result.detections if required & set(d.zones)]
        )

    def alerts_on(self, camera_name: str, mode: str | None = None) -> bool:
        return self._for(camera_name, mode).enabled

    def zones_needed(self, camera_name: str) -> list[str]:
        modes = [None, *self._config.modes]
        needed = (self._for(camera_name, mode).required_zones for mode in modes)
        return list(dict.fromkeys(zone for zones in needed for zone in zones))

    def modes_named(self) -> list[str]:
        return list(self._config.modes)

    def cameras_named(self) -> list[str]:
        in_modes = (name for mode in self._config.modes.values() for name in mode.overrides)
        return list(dict.fromkeys([*self._config.overrides, *in_modes]))

    def decide(
        self,
        camera_name: str,
        filter_result: FilterResult | None,
        analysis: AnalysisResult | AnalysisUnavailable | None,
        mode: str | None = None,
    ) -> AlertDecision:
        config = self._for(camera_name, mode)
        scope = " (per-camera)" if camera_name in self._config.overrides else ""
        if mode is not None and mode in self._config.modes:
            scope += f" (mode {mode})"
        if not config.enabled:
            return _no_alert(f"alerts off for {camera_name}{scope}")
        if config.required_zones and filter_result is not None and not filter_result.detections:
            zones = ", ".join(config.required_zones)
            return _no_alert(f"nothing detected in the required zones ({zones}){scope}")
        min_risk = config.min_risk_level
        match analysis:
            case AnalysisResult(only_known=True, known_entities=[_, *_]) if (
                config.ignore_known
                and analysis.risk_level < RiskLevel.HIGH
                and _explained(filter_result, analysis)
            ):
                names = ", ".join(entity.name for entity in analysis.known_entities)
                return _no_alert(f"only known entities seen ({names}), ignore_known{scope}")
        match analysis:
            case AnalysisResult() if analysis.risk_level >= min_risk:
                return _notify(f"risk_level={analysis.risk_level} >= {min_risk}{scope}")
            case AnalysisResult() if analysis.activity_type in config.notify_on_activity_types:
                return _notify(f"activity_type={analysis.activity_type}{scope}")
            case AnalysisResult(requires_review=True) if config.notify_on_review:
                return _notify(f"the VLM asks for a review{scope}")
            case AnalysisUnavailable(trigger_classes=[_, *_]) if (
                config.on_vlm_failure == OnVLMFailure.ALERT
            ):
                found = ", ".join(analysis.trigger_classes)
                return _notify(f"{found} detected; analysis unavailable ({analysis.reason})")
        if config.notify_on_motion:
            return _notify(f"notify_on_motion{scope}")
        match analysis:
            case None:
                return _no_alert("VLM skipped and notify_on_motion off")
            case AnalysisUnavailable(trigger_classes=[]):
                return _no_alert(
                    f"analysis unavailable ({analysis.reason}), no trigger class detected"
                )
            case AnalysisUnavailable():
                return _no_alert(
                    f"analysis unavailable ({analysis.reason}), on_vlm_failure "
                    f"{config.on_vlm_failure} and notify_on_motion off"
                )
            case AnalysisResult():
                return _no_alert(
                    f"risk_level={analysis.risk_level} < {min_risk}, "
                    f"activity_type={analysis.activity_type} not alerting{scope}"
                )

    def _for(self, camera_name: str, mode: str | None) -> DefaultAlertPolicyConfig:
        """The policy's settings for the camera in the mode, the more specific winning."""
        in_mode = self._config.modes.get(mode or "", ModeAlertSettings())
        layers = [
            in_mode,
            self._config.overrides.get(camera_name, CameraAlertOverride()),
            in_mode.overrides.get(camera_name, CameraAlertOverride()),
        ]
        changed = {
            key: value
            for layer in layers
            for key, value in layer
            if value is not None and key in CameraAlertOverride.model_fields
        }
        return self._config.model_copy(update=changed)


def _explained(filter_result: FilterResult | None, analysis: AnalysisResult) -> bool:
    """Every class the detector counted is what a recognised entity is (a person, a car):
    the detector, not only the VLM, says nothing else was there."""
    if filter_result is None:
        return True
    labels = {entity.label for entity in analysis.known_entities}
    return set(filter_result.detected_classes) <= labels


def _notify(reason: str) -> AlertDecision:
    return AlertDecision(notify=True, notify_reason=reason)


def _no_alert(reason: str) -> AlertDecision:
    return AlertDecision(notify=False, notify_reason=reason)
