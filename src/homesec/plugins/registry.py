"""The one plugin registry: registration by decorator, validated loading, entry points.

A plugin is a class built from its own Pydantic config model (by `create(config)` where it
has one, else by the class itself) and registered under a kind and a name. Modules are found
through the `homesec.plugins` entry-point group, where the name `{kind}.{backend}` points at
the module that registers that backend (built-in plugins are listed the same way in
HomeSec's own pyproject.toml). A module is imported only when a config asks for its backend,
so a missing optional dependency fails loudly then, naming the package, and never silently
drops a plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel

from homesec.errors import PluginError
from homesec.interfaces import (
    AlertPolicy,
    AnalyzerConfig,
    ClipSource,
    Notifier,
    NotifierConfig,
    ObjectFilter,
    SourceConfig,
    StorageBackend,
    VLMAnalyzer,
)
from homesec.models.enums import PluginType

ENTRY_POINT_GROUP = "homesec.plugins"


PluginClass = TypeVar("PluginClass", bound=type)
P = TypeVar("P")


@dataclass(frozen=True)
class PluginSpec:
    kind: PluginType
    name: str
    config_cls: type[BaseModel]
    factory: Callable[[Any], object]


_REQUIRED_CONFIG_BASE: dict[PluginType, type[BaseModel]] = {
    PluginType.SOURCE: SourceConfig,
    PluginType.ANALYZER: AnalyzerConfig,
    PluginType.NOTIFIER: NotifierConfig,
}

_registry: dict[tuple[PluginType, str], PluginSpec] = {}


def plugin(
    kind: PluginType, name: str, config: type[BaseModel]
) -> Callable[[PluginClass], PluginClass]:
    """Class decorator: register `cls` as the `name` backend of `kind`."""

    base = _REQUIRED_CONFIG_BASE.get(kind)
    if base is not None and not issubclass(config, base):
        raise TypeError(f"{kind} plugin {name!r}: config must subclass {base.__name__}")

    def register(cls: PluginClass) -> PluginClass:
        key = (kind, name)
        factory = getattr(cls, "create", cls)
        existing = _registry.get(key)
        if existing is not None and existing.factory != factory:
            raise ValueError(f"{kind} plugin {name!r} is already registered")
        _registry[key] = PluginSpec(kind, name, config, factory)
        return cls

    return register


def config_model(kind: PluginType, name: str) -> type[BaseModel]:
    """The config model of a backend (imported through its entry point when needed)."""
    return _spec(kind, name).config_cls


def validate_plugin_config(kind: PluginType, name: str, raw: dict[str, Any]) -> BaseModel:
    """Validate a plugin's config; raises PluginError (unknown) or ValidationError (bad)."""
    return config_model(kind, name).model_validate(raw)


@dataclass(frozen=True)
class _Loader(Generic[P]):
    """`load_*(backend, raw)`: validate the config, build the plugin, check its Protocol."""

    kind: PluginType
    interface: type

    def __call__(self, backend: str, raw: dict[str, Any]) -> P:
        spec = _spec(self.kind, backend)
        instance = spec.factory(spec.config_cls.model_validate(raw))
        if not isinstance(instance, self.interface):
            raise TypeError(
                f"{self.kind} plugin {backend!r} does not implement {self.interface.__name__}"
            )
        return cast(P, instance)


load_source = _Loader[ClipSource](PluginType.SOURCE, ClipSource)
load_storage = _Loader[StorageBackend](PluginType.STORAGE, StorageBackend)
load_filter = _Loader[ObjectFilter](PluginType.FILTER, ObjectFilter)
load_analyzer = _Loader[VLMAnalyzer](PluginType.ANALYZER, VLMAnalyzer)
load_alert_policy = _Loader[AlertPolicy](PluginType.ALERT_POLICY, AlertPolicy)
load_notifier = _Loader[Notifier](PluginType.NOTIFIER, Notifier)


def available(kind: PluginType) -> list[str]:
    """Names of the backends of a kind, registered or announced by entry points."""
    names = {name for (k, name) in _registry if k == kind}
    return sorted(names | set(announced(kind)))


def announced(kind: PluginType) -> list[str]:
    """Names of the backends of a kind announced by entry points (the installed plugins)."""
    prefix = f"{kind}."
    return sorted(
        ep.name.removeprefix(prefix)
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.name.startswith(prefix)
    )


def _spec(kind: PluginType, name: str) -> PluginSpec:
    if (kind, name) not in _registry:
        _import_entry_points(kind, name)
    spec = _registry.get((kind, name))
    if spec is None:
        choices = ", ".join(available(kind)) or "none"
        raise PluginError(f"unknown {kind} backend {name!r} (available: {choices})")
    return spec


def _import_entry_points(kind: PluginType, name: str) -> None:
    # Exact `{kind}.{name}` entries first; entries without a kind prefix may register anything.
    wanted = f"{kind}.{name}"
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != wanted and "." in ep.name:
            continue
        try:
            ep.load()
        except ModuleNotFoundError as exc:
            if exc.name and ep.value.startswith(exc.name):
                raise PluginError(
                    f"plugin {ep.name!r} points at a missing module {ep.value!r}"
                ) from exc
            raise PluginError(
                f"plugin {ep.name!r} needs the Python package {exc.name!r}: install it "
                f"(for example `uv pip install {exc.name}`)",
                cause=exc,
            ) from exc
