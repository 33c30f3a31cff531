"""Reads the YAML config and validates all of it, plugin sections included, before start-up.

Every problem is reported with its key path (`cameras[1].source.config.watch_dir: field
required`), all at once, as a ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from homesec.errors import ConfigError, PluginError
from homesec.interfaces import AlertPolicy, RelevanceFilter
from homesec.models.config import (
    CameraConfig,
    Config,
    NotifierRef,
    VLMSection,
    printable,
)
from homesec.models.enums import PluginType, RunMode
from homesec.plugins.registry import load_alert_policy, validate_plugin_config

# Keys that would hold a secret's value; the config must name an env var instead.
_SECRET_KEYS = frozenset({"password", "token", "secret", "api_key", "dsn", "refresh_token"})

# A real config is a few kilobytes and a few hundred values; these bounds are generous, and
# keep a huge file or a "billion laughs" of nested YAML aliases from running for minutes.
_MAX_FILE_BYTES = 4 * 1024 * 1024
_MAX_VALUES = 100_000


def load_config(path: Path) -> Config:
    """Parse and validate the whole config file, or raise ConfigError listing every problem."""
    raw = _read_yaml(path)
    problems = list(_secret_value_problems(raw, ""))
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(problems + [_describe(err) for err in exc.errors()], exc) from exc
    problems += _plugin_problems(config)
    if not problems and config.alert_policy.enabled:
        policy = config.alert_policy
        problems += policy_problems(config, load_alert_policy(policy.backend, policy.config))
    if problems:
        raise ConfigError(problems)
    return config


def policy_problems(config: Config, policy: AlertPolicy) -> list[str]:
    """Every zone the policy counts on exists on its camera, and every mode it has settings
    for is one of `modes.names`; else they would silently never apply."""
    if not isinstance(policy, RelevanceFilter):
        return []
    problems = []
    unknown = [name for name in policy.modes_named() if name not in config.modes.names]
    if unknown:
        problems.append(
            f"alert_policy: settings for the modes {', '.join(unknown)}, which modes.names "
            f"does not list ({', '.join(config.modes.names) or 'no modes'})"
        )
    cameras = [camera.name for camera in config.cameras]
    strangers = [name for name in policy.cameras_named() if name not in cameras]
    if strangers:
        problems.append(
            f"alert_policy: settings for the cameras {', '.join(strangers)}, which are not "
            f"configured (the cameras: {', '.join(cameras)})"
        )
    for camera in config.cameras:
        missing = [name for name in policy.zones_needed(camera.name) if name not in camera.zones]
        if missing:
            defined = ", ".join(camera.zones) or "none"
            problems.append(
                f"alert_policy: camera {camera.name!r} requires the zones {', '.join(missing)}, "
                f"which it does not define (its zones: {defined}); fix the names, define them "
                "under cameras[].zones, or set required_zones: [] in its override"
            )
    return problems


def source_config(camera: CameraConfig) -> dict[str, Any]:
    """A camera's source config with the fields HomeSec fills in."""
    return {**camera.source.config, "camera_name": camera.name}


def notifier_config(ref: NotifierRef, config: Config) -> dict[str, Any]:
    """A notifier's config with the fields HomeSec fills in."""
    return {
        **ref.config,
        "camera_names": [camera.name for camera in config.cameras],
        "work_dir": config.pipeline.work_dir,
        "digest": ref.digest and config.digest.enabled,
    }


def analyzer_config(vlm: VLMSection, own: dict[str, Any] | None = None) -> dict[str, Any]:
    """An analyzer's config (the first VLM's, or a fallback's `own`) with the fields HomeSec
    fills in."""
    config = vlm.config if own is None else own
    return {**config, "preprocessing": vlm.preprocessing.model_dump()}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"], exc) from exc
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError([f"{path}: too large for a config file (over {_MAX_FILE_BYTES:,} bytes)"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte {exc.start})"
        raise ConfigError([f"{path}: {reason}"], exc) from exc
    try:
        raw = _parse_bounded(text, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}: {reason}{where}"], exc) from exc
    except RecursionError as exc:
        # PyYAML recurses once per nesting level.
        raise ConfigError([f"{path}: nested too deeply"], exc) from exc
    except ValueError as exc:
        # PyYAML's constructors: a date like 2024-13-45, an integer of thousands of digits.
        raise ConfigError([f"{path}: invalid value ({exc})"], exc) from exc
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: the config must be a mapping of sections"])
    return raw


def _parse_bounded(text: str, path: Path) -> Any:
    """`yaml.safe_load`, once the composed node graph passed `_check_aliases`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_aliases(root: yaml.Node, path: Path) -> None:
    """Refuse an alias inside its own anchor (an endless structure) and a document over
    `_MAX_VALUES` values once aliases are expanded (a "billion laughs"), before expanding.

    An alias is the very node it names: each node's expanded size is computed once.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            mark = node.start_mark
            raise ConfigError(
                [
                    f"{path}: refers to itself through a YAML alias (the anchor at line "
                    f"{mark.line + 1}, column {mark.column + 1})"
                ]
            )
        open_nodes.add(key)
        match node:
            case yaml.SequenceNode():
                children: list[yaml.Node] = node.value
            case yaml.MappingNode():
                children = [part for pair in node.value for part in pair]
            case _:
                children = []
        total = 1
        for child in children:
            total = min(total + size(child), _MAX_VALUES + 1)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    if size(root) > _MAX_VALUES:
        raise ConfigError(
            [f"{path}: too large once YAML aliases are expanded (over {_MAX_VALUES:,} values)"]
        )


def _plugin_sections(config: Config) -> Iterator[tuple[str, PluginType, str, dict[str, Any]]]:
    for index, camera in enumerate(config.cameras):
        source = f"cameras[{index}].source"
        yield source, PluginType.SOURCE, camera.source.backend, source_config(camera)
    yield "storage", PluginType.STORAGE, config.storage.backend, config.storage.config
    yield "filter", PluginType.FILTER, config.filter.backend, config.filter.config
    if config.vlm.run_mode != RunMode.NEVER and config.vlm.backend:
        yield "vlm", PluginType.ANALYZER, config.vlm.backend, analyzer_config(config.vlm)
        for index, provider in enumerate(config.vlm.fallbacks):
            own = analyzer_config(config.vlm, provider.config)
            yield f"vlm.fallbacks[{index}]", PluginType.ANALYZER, provider.backend, own
    if config.alert_policy.enabled:
        policy = config.alert_policy
        yield "alert_policy", PluginType.ALERT_POLICY, policy.backend, policy.config
    for index, notifier in enumerate(config.notifiers):
        path = f"notifiers[{index}]"
        yield path, PluginType.NOTIFIER, notifier.backend, notifier_config(notifier, config)


def _plugin_problems(config: Config) -> list[str]:
    problems: list[str] = []
    for path, kind, backend, raw in _plugin_sections(config):
        try:
            validate_plugin_config(kind, backend, raw)
        except PluginError as exc:
            problems.append(f"{path}.backend: {exc}")
        except ValidationError as exc:
            problems += [_describe(err, prefix=f"{path}.config") for err in exc.errors()]
    return problems


def _secret_value_problems(node: object, path: str) -> Iterator[str]:
    match node:
        case dict():
            for key, value in node.items():
                child = f"{path}.{printable(key)}" if path else printable(key)
                if str(key).lower() in _SECRET_KEYS and value not in (None, ""):
                    yield (
                        f"{child}: secrets are never written in the config; "
                        f"put the value in an environment variable and set {key}_env"
                    )
                else:
                    yield from _secret_value_problems(value, child)
        case list():
            for index, item in enumerate(node):
                yield from _secret_value_problems(item, f"{path}[{index}]")
        case str() if _has_url_password(node):
            yield (
                f"{path}: a URL with a password is never written in the config; "
                "put it in an environment variable and name that variable instead"
            )


def _has_url_password(value: str) -> bool:
    if "://" not in value:
        return False
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:  # not a URL after all (an unclosed IPv6 bracket...)
        return False


def _describe(error: ErrorDetails, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    for item in error["loc"]:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(printable(item))
    location = ".".join(parts) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{location}: {message}"
