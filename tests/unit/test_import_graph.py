"""The package import graph, read from the source with ast: no cycles, and each layer imports only downwards.

Layers: ``config/`` is the core (it may lean only on ``errors``, ``log`` and
``metrics``); the LiveKit edge (``agents``, ``providers``) and the SignalWire
edge (``swaig_fallback``) sit on it and never on each other; the CLI sits
above both edges and nothing below imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("livekit_fallback", "swaig_fallback")


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module names it."""

    target: str
    """Absolute dotted name: a module of ours (most specific one) or an external top-level package."""
    line: int
    type_checking: bool
    """Inside an ``if TYPE_CHECKING:`` block (never executed)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The most specific module of ours that ``name`` lies in, if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inside = type_checking or (isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body)
        yield child, inside
        yield from _walk(child, inside)


def imports_of(module: str) -> list[Import]:
    """Every import in ``module``'s source (function-level ones too), resolved to absolute names."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node, type_checking in _walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _ours(name) or name.split(".")[0]
            found.append(Import(target, node.lineno, type_checking))  # type: ignore[attr-defined]
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(importers: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """``module:line -> target`` for each import from ``importers`` into ``forbidden`` and not ``allowed``."""
    return [
        f"{module}:{imp.line} -> {imp.target}"
        for module, imps in GRAPH.items()
        if _within(module, importers)
        for imp in imps
        if any(_within(imp.target, f) for f in forbidden) and not any(_within(imp.target, a) for a in allowed)
    ]


def runtime_edges() -> dict[str, list[str]]:
    """Module to the modules of ours it imports at run time (``TYPE_CHECKING`` imports left out)."""
    return {
        m: sorted({i.target for i in imps if i.target in MODULES and not i.type_checking}) for m, imps in GRAPH.items()
    }


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """One cycle in ``edges`` as the list of modules along it (first repeated last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in edges.get(module, []):
            if target == module:
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_graph_is_read_from_every_module() -> None:
    """The reader finds both packages' modules and resolves relative and absolute imports to them."""
    assert {"livekit_fallback.cli", "livekit_fallback.config.resolver", "swaig_fallback.server"} <= set(MODULES)
    targets = {i.target for i in GRAPH["livekit_fallback.cli"]}
    assert {"livekit_fallback.cli.resolve", "livekit_fallback.cli.swaig", "livekit_fallback.config.resolver"} <= targets
    assert "livekit_fallback.config.resolver" in {i.target for i in GRAPH["swaig_fallback.server"]}


def test_no_import_cycles() -> None:
    """No chain of imports between our modules leads back to where it started."""
    assert find_cycle(runtime_edges()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The cycle finder reports a three-module cycle and passes a diamond (so a pass above means something)."""
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None


def test_config_leans_only_on_errors_log_and_metrics() -> None:
    """config/ imports nothing of livekit_fallback outside config/ except errors, log and metrics."""
    allowed = ("livekit_fallback.config", "livekit_fallback.errors", "livekit_fallback.log", "livekit_fallback.metrics")
    assert violations("livekit_fallback.config", ("livekit_fallback",), allowed) == []


@pytest.mark.parametrize(
    "forbidden",
    [
        "livekit",
        "swaig_fallback",
        "livekit_fallback.agents",
        "livekit_fallback.providers",
        "livekit_fallback.tools",
        "livekit_fallback.cli",
    ],
)
def test_config_never_imports_an_edge_or_the_cli(forbidden: str) -> None:
    """config/ never imports the livekit SDK, either platform edge, the tool registry or the CLI."""
    assert violations("livekit_fallback.config", (forbidden,)) == []


def test_swaig_fallback_never_imports_the_cli() -> None:
    """The SignalWire edge sits below the CLI: swaig_fallback never imports livekit_fallback.cli."""
    assert violations("swaig_fallback", ("livekit_fallback.cli",)) == []


@pytest.mark.parametrize("edge", ["livekit_fallback.agents", "livekit_fallback.providers"])
def test_livekit_edge_never_imports_swaig_fallback(edge: str) -> None:
    """The LiveKit edge (agents, providers) never imports the SignalWire edge."""
    assert violations(edge, ("swaig_fallback",)) == []


def test_swaig_fallback_never_imports_the_livekit_edge() -> None:
    """The SignalWire edge never imports the LiveKit edge (agents, providers)."""
    assert violations("swaig_fallback", ("livekit_fallback.agents", "livekit_fallback.providers")) == []


MAX_MODULE_LINES = 500


def test_no_module_is_over_500_lines() -> None:
    """Each module keeps to one job: none of the package's modules grows past 500 lines."""
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
