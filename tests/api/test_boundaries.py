"""The API's boundary: it reads through the repository and the types it exposes, never
through the state package (tables, store, SQL queries)."""

from __future__ import annotations

import ast
from importlib.util import resolve_name
from pathlib import Path

import homesec.api

API_PACKAGE = Path(homesec.api.__file__).parent
STATE_PACKAGE = "homesec.state"


def imported_names(source: str, package: str) -> set[str]:
    """Absolute names of the modules (and of the names taken from them) that `source`,
    a module of `package`, imports; relative imports resolved, TYPE_CHECKING ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        match node:
            case ast.Import(names=aliases):
                names.update(alias.name for alias in aliases)
            case ast.ImportFrom(module=module, names=aliases, level=level):
                base = resolve_name("." * level + (module or ""), package) if level else module
                assert base is not None
                names.add(base)
                # `from homesec import state` imports the package by another spelling.
                names.update(f"{base}.{alias.name}" for alias in aliases)
    return names


def _package_of(path: Path) -> str:
    return ".".join(("homesec", *path.relative_to(API_PACKAGE.parent).parent.parts))


def _is_state(name: str) -> bool:
    return name == STATE_PACKAGE or name.startswith(f"{STATE_PACKAGE}.")


def test_no_api_module_imports_from_the_state_package() -> None:
    # Given every Python module under src/homesec/api
    modules = sorted(API_PACKAGE.rglob("*.py"))

    # When the imports of each are read from its syntax tree
    state_imports = {
        str(path.relative_to(API_PACKAGE)): sorted(
            name
            for name in imported_names(path.read_text(encoding="utf-8"), _package_of(path))
            if _is_state(name)
        )
        for path in modules
    }

    # Then none imports homesec.state, in any spelling
    assert len(modules) > 10
    assert {path: names for path, names in state_imports.items() if names} == {}


def test_every_spelling_of_a_state_import_is_seen() -> None:
    # Given imports of the state package written in each form Python allows
    spellings = [
        "import homesec.state.store",
        "from homesec.state.queries import ClipFilter",
        "from homesec import state",
        "from ..state import queries",
        "from .. import state",
        "if TYPE_CHECKING:\n    from homesec.state.tables import clip_states",
    ]

    # When each is read as a module of homesec.api (like homesec/api/service.py)
    seen = [any(map(_is_state, imported_names(s, "homesec.api"))) for s in spellings]

    # Then every one is recognised, and an import of the repository is not
    assert all(seen)
    assert not any(
        map(_is_state, imported_names("from homesec.repository import clip_repository", "x"))
    )
