"""The one rule of the layers (docs/architecture.md), checked on the source itself.

A module may import from its own package and from the layers below it, never from a layer
above: the engine does not know the record exists, the service does not know about HTTP.
The check reads every module's imports with ``ast`` (including imports inside functions, which
are still dependencies), so an upward import fails here before anyone has to find it in review.
The same walk checks the three boundaries the layout promises: SQL only in ``storage``,
pydantic only in ``requests`` and ``api``, the environment only in ``settings``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import deconflict

PACKAGE = Path(deconflict.__file__).parent

# Lowest first. A module may import from its own layer and from any layer before it.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "settings", "clock"}),
    frozenset({"geo"}),
    # The documents: a volume's geometry is checked by geo; requests holds the pydantic model
    # of every document (policy files included) and policy the plain object it becomes.
    frozenset({"policy", "volumes", "requests", "importing"}),
    frozenset({"engine"}),
    frozenset({"storage"}),
    frozenset({"record"}),
    frozenset({"service"}),
    frozenset({"api"}),
    frozenset({"scenario"}),
    frozenset({"cli", "bench", "__main__"}),
)


def layer_of(unit: str) -> int:
    for level, units in enumerate(LAYERS):
        if unit in units:
            return level
    raise AssertionError(f"deconflict.{unit} is in no layer: add it to LAYERS and the docs")


@dataclass(frozen=True)
class Module:
    path: Path
    name: str  # dotted, under deconflict: "engine.index"
    tree: ast.Module

    @property
    def unit(self) -> str:
        """The package (or foundation module) the module belongs to: "engine", "errors"."""
        return self.name.split(".")[0]


def modules() -> list[Module]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        if not parts or "alembic" in parts:  # the package's own __init__; Alembic's scripts
            continue
        found.append(Module(path, ".".join(parts), ast.parse(path.read_text("utf-8"))))
    return found


def imported_units(module: Module) -> set[str]:
    """Every deconflict unit the module imports, wherever in the module the import is."""
    units = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "deconflict":  # from deconflict import engine (not __version__)
                names = [f"deconflict.{a.name}" for a in node.names if not a.name.startswith("_")]
        else:
            continue
        for name in names:
            if name.startswith("deconflict."):
                units.add(name.split(".")[1])
    return units


MODULES = modules()


def test_the_walk_sees_every_layer() -> None:
    # A walk that found nothing would pass every check below.
    seen = {module.unit for module in MODULES}
    assert seen >= {"geo", "engine", "storage", "record", "service", "api", "scenario", "cli"}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_no_module_imports_a_layer_above_its_own(module: Module) -> None:
    own = layer_of(module.unit)
    upward = sorted(u for u in imported_units(module) if layer_of(u) > own)
    assert not upward, f"deconflict.{module.name} imports {upward}, above its layer"


def test_an_upward_import_is_caught() -> None:
    """The check itself can fail: the engine importing the service is refused."""
    tree = ast.parse("from deconflict.service import declarations\n")
    module = Module(PACKAGE / "engine" / "x.py", "engine.x", tree)
    assert imported_units(module) == {"service"}
    assert layer_of("service") > layer_of(module.unit)


def _calls(module: Module, attribute: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Attribute) and node.attr == attribute
    ]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_sql_runs_only_in_storage(module: Module) -> None:
    if module.unit == "storage":
        return
    lines = _calls(module, "execute")
    assert not lines, f"deconflict.{module.name} runs SQL itself (lines {lines}): use storage/"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_pydantic_only_in_requests_and_api(module: Module) -> None:
    if module.unit in {"requests", "api"}:
        return
    imports = [
        node.lineno
        for node in ast.walk(module.tree)
        if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pydantic"))
        or (
            isinstance(node, ast.Import)
            and any(alias.name.startswith("pydantic") for alias in node.names)
        )
    ]
    assert not imports, f"deconflict.{module.name} imports pydantic (lines {imports})"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_the_environment_is_read_only_in_settings(module: Module) -> None:
    if module.name == "settings":
        return
    lines = _calls(module, "environ") + _calls(module, "getenv")
    assert not lines, f"deconflict.{module.name} reads the environment (lines {lines})"
