"""Fuzzing the config loader: any file, however broken, loads or raises ConfigError.

The documents start from config/example.yaml (so the fuzzer reaches the plugin sections and
their validators) and are mutated the way people break configs: keys dropped or misspelt,
values of the wrong type, huge or non-finite numbers, unicode, nested junk; then the text or
its bytes are damaged. A crash with any other exception would be a traceback at start-up.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from homesec.config_loader import load_config
from homesec.errors import ConfigError
from homesec.models.config import Config
from tests.security.fuzzing import FUZZ

# Hypothesis tries 200 config files.
pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
EXAMPLE: dict[str, Any] = yaml.safe_load((REPO / "config" / "example.yaml").read_text())

Path_ = tuple[str | int, ...]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**4000),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(["", "{camera_name}", "{0}", "{x.y}", "{", "${HOME}", "-1", "0x1F", "~"]),
)
_junk = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.integers(), children, max_size=4)
    ),
    max_leaves=15,
)


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every key path in the document (the root excluded)."""
    match node:
        case dict():
            items: list[tuple[str | int, Any]] = list(node.items())
        case list():
            items = list(enumerate(node))
        case _:
            return []
    found: list[Path_] = []
    for key, child in items:
        found += [(*prefix, key), *_paths(child, (*prefix, key))]
    return found


_EXAMPLE_PATHS = _paths(EXAMPLE)
# Paths inside plugin sections, to reach the plugins' own config models and validators.
_PLUGIN_PATHS = [path for path in _EXAMPLE_PATHS if "config" in path[:-1]]


def _mutate(document: dict[str, Any], path: Path_, operation: str, value: Any) -> None:
    *parents, last = path
    parent: Any = document
    for key in parents:
        parent = parent[key]
    match operation:
        case "drop":
            del parent[last]
        case "replace":
            parent[last] = value
        case "wrap":
            parent[last] = [parent[last]]
        case "add":
            if isinstance(parent, dict):
                parent[f"{last}x"] = value


@st.composite
def _mutated_examples(draw: st.DrawFn, where: list[Path_] = _EXAMPLE_PATHS) -> dict[str, Any]:
    document = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [path for path in where if _exists(document, path)] or [("version",)]
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["drop", "replace", "replace", "wrap", "add"]))
        _mutate(document, path, operation, draw(_junk))
    return document


def _exists(document: Any, path: Path_) -> bool:
    node = document
    try:
        for key in path:
            node = node[key]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _dump(document: Any) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode()


@st.composite
def _damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """The bytes with a slice replaced by random bytes, or cut short."""
    start = draw(st.integers(min_value=0, max_value=len(data)))
    end = draw(st.integers(min_value=start, max_value=min(len(data), start + 20)))
    return data[:start] + draw(st.binary(max_size=8)) + data[end:]


_files = st.one_of(
    _mutated_examples().map(_dump),
    _mutated_examples(_PLUGIN_PATHS).map(_dump),
    _mutated_examples(_PLUGIN_PATHS).map(_dump),
    _mutated_examples().map(_dump).flatmap(_damaged),
    _junk.map(_dump),
    st.text().map(str.encode),
    st.binary(),
)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "config.yaml"


@FUZZ
@given(content=_files)
@example(content=b"version: 1\ncameras: caf\xe9\n")
@example(content=b"a: " + b"[" * 20_000 + b"]" * 20_000)
@example(content=b"retry: {max_attempts: " + b"9" * 5000 + b"}\n")
@example(content=b"pipeline: {work_dir: 2024-13-45}\n")
@example(content=b"a: &x [*x]\n")
@example(
    content=b"l0: &l0 [lol]\n"
    + b"".join(
        b"l%d: &l%d [%s]\n" % (i, i, b", ".join([b"*l%d" % (i - 1)] * 9)) for i in range(1, 9)
    )
)
@example(content=b"? '\n\n'")
@example(
    content=_dump({**EXAMPLE, "vlm": {**EXAMPLE["vlm"], "config": "x"}}).replace(
        b"config: x", b"config: &c {activity_types: [*c]}"
    )
)
def test_any_config_file_loads_or_gives_config_errors(config_file: Path, content: bytes) -> None:
    # Given any file where the config is expected
    config_file.write_bytes(content)

    # When it is loaded
    try:
        config = load_config(config_file)
    except ConfigError as error:
        # Then it is refused with one-line, non-empty problems (printed as `error: ...` lines)
        assert error.problems
        assert all(problem.strip() and "\n" not in problem for problem in error.problems)
        return
    # Then a config that loads is a validated Config
    assert isinstance(config, Config) and config.cameras
