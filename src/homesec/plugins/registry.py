"""The one plugin registry: registration by decorator, validated loading, entry points.

A plugin is a class with `create(config)`; it registers under a kind and a name with its
own Pydantic config model. Modules are found through the `homesec.plugins` entry-point group,
where the name `{kind}.{backend}` points at the module that registers that backend (built-in
plugins are listed the same way in HomeSec's own pyproject.toml). A module is imported only
when a config asks for its backend, so a missing optional dependency fails loudly then,
naming the package, and never silently drops a plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, TypeVar, cast

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


class _Creatable(Protocol):
    @classmethod
    def create(cls, config: Any) -> object: ...


PluginClass = TypeVar("PluginClass", bound=type[_Creatable])


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
        existing = _registry.get(key)
        if existing is not None and existing.factory != cls.create:
            raise ValueError(f"{kind} plugin {name!r} is already registered")
        _registry[key] = PluginSpec(kind, name, config, cls.create)
        return cls

    return register


def config_model(kind: PluginType, name: str) -> type[BaseModel]:
    """The config model of a backend (imported through its entry point when needed)."""
    return _spec(kind, name).config_cls


def validate_plugin_config(kind: PluginType, name: str, raw: dict[str, Any]) -> BaseModel:
    """Validate a plugin's config; raises PluginError (unknown) or ValidationError (bad)."""
    return config_model(kind, name).model_validate(raw)


def load_source(backend: str, raw: dict[str, Any]) -> ClipSource:
    return cast(ClipSource, _load(PluginType.SOURCE, backend, raw))


def load_storage(backend: str, raw: dict[str, Any]) -> StorageBackend:
    return cast(StorageBackend, _load(PluginType.STORAGE, backend, raw))


def load_filter(backend: str, raw: dict[str, Any]) -> ObjectFilter:
    return cast(ObjectFilter, _load(PluginType.FILTER, backend, raw))


def load_analyzer(backend: str, raw: dict[str, Any]) -> VLMAnalyzer:
    return cast(VLMAnalyzer, _load(PluginType.ANALYZER, backend, raw))


def load_alert_policy(backend: str, raw: dict[str, Any]) -> AlertPolicy:
    return cast(AlertPolicy, _load(PluginType.ALERT_POLICY, backend, raw))


def load_notifier(backend: str, raw: dict[str, Any]) -> Notifier:
    return cast(Notifier, _load(PluginType.NOTIFIER, backend, raw))


_INTERFACES: dict[PluginType, type] = {
    PluginType.SOURCE: ClipSource,
    PluginType.STORAGE: StorageBackend,
    PluginType.FILTER: ObjectFilter,
    PluginType.ANALYZER: VLMAnalyzer,
    PluginType.ALERT_POLICY: AlertPolicy,
    PluginType.NOTIFIER: Notifier,
}


def _load(kind: PluginType, name: str, raw: dict[str, Any]) -> object:
    """Validate the config, build the plugin, and check it implements its kind's Protocol."""
    spec = _spec(kind, name)
    instance = spec.factory(spec.config_cls.model_validate(raw))
    interface = _INTERFACES[kind]
    if not isinstance(instance, interface):
        raise TypeError(f"{kind} plugin {name!r} does not implement {interface.__name__}")
    return instance


def available(kind: PluginType) -> list[str]:
    """Names of the backends of a kind, registered or announced by entry points."""
    names = {name for (k, name) in _registry if k == kind}
    return sorted(names | set(announced(kind)))


def announced(kind: PluginType) -> list[str]:
    """Names of the backends of a kind announced by entry points (the installed plugins)."""
    prefix = f"{kind}."
    return sorted(
        ep.name.removeprefix(prefix) for ep in _entry_points() if ep.name.startswith(prefix)
    )


def _spec(kind: PluginType, name: str) -> PluginSpec:
    spec = _registry.get((kind, name))
    if spec is None:
        _import_entry_points(kind, name)
        spec = _registry.get((kind, name))
    if spec is None:
        choices = ", ".join(available(kind)) or "none"
        raise PluginError(f"unknown {kind} backend {name!r} (available: {choices})")
    return spec


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _import_entry_points(kind: PluginType, name: str) -> None:
    # Exact `{kind}.{name}` entries first; entries without a kind prefix may register anything.
    wanted = f"{kind}.{name}"
    for ep in _entry_points():
        if ep.name == wanted or "." not in ep.name:
            _load_entry_point(ep)


def _load_entry_point(ep: EntryPoint) -> None:
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
