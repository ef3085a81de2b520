"""The import graph of ``src/yomo``: no cycle, and no import up the layers.

The layers, bottom up (docs/architecture.md): wire -> transport -> session ->
zipper / client -> front doors (``yomo``, ``yomo.aio``) -> cli. Every import
counts, the ones inside functions too (they run, later); imports under
``if TYPE_CHECKING:`` never run and are left out. The graph is read from the
source with ``ast``, so the test needs no QUIC library and imports nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: Rank of each part: a module may import its own part and parts ranked lower.
#: Parts of one rank (zipper and client) may not import each other.
LAYERS: dict[str, int] = {
    "yomo.errors": 0,
    "yomo._version": 0,
    "yomo._native": 0,
    "yomo._logging": 1,
    "yomo._asgi": 1,
    "yomo._signals": 1,
    "yomo.wire": 1,
    "yomo.ai": 1,
    "yomo.transport": 2,
    "yomo.session": 3,
    "yomo.zipper": 4,
    "yomo.client": 4,
    "yomo.bridge": 5,
    "yomo._sync": 6,
    "yomo.aio": 7,
    "yomo": 7,
    "yomo._testing_llm": 8,
    "yomo.cli": 8,
    "yomo.testing": 9,
    "yomo.__main__": 9,
}

#: Upward imports that are part of the design, each with its reason. A stale entry fails.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("yomo.zipper.server", "yomo.bridge"): (
        "a zipper configured with an AI bridge starts it; the bridge is a client of the "
        "zipper, imported only when configured"
    ),
}

#: Import cycles being taken apart on other branches; a stale entry fails.
KNOWN_CYCLES: list[list[str]] = []


def _modules() -> dict[str, tuple[Path, str]]:
    """Module name -> (file, package its relative imports start from)."""
    out: dict[str, tuple[Path, str]] = {}
    for path in sorted((SRC / "yomo").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            name = ".".join(parts[:-1])
            out[name] = (path, name)
        else:
            name = ".".join(parts)
            out[name] = (path, ".".join(parts[:-1]))
    return out


MODULES = _modules()
KNOWN = set(MODULES) | {"yomo._native"}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except what sits under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str) -> set[str]:
    path, package = MODULES[name]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "yomo" and not target.startswith("yomo."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in KNOWN else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "yomo")
    found.discard(name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _part(module: str) -> str:
    """The layer part a module belongs to: its longest prefix in ``LAYERS``."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return prefix
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _upward() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for module, targets in GRAPH.items():
        here = _part(module)
        for target in targets:
            there = _part(target)
            if here == there or LAYERS[there] < LAYERS[here]:
                continue
            found[(module, there)] = f"{module} ({here}) imports {target} ({there})"
    return found


def test_every_module_has_a_layer() -> None:
    assert {_part(m) for m in GRAPH} <= set(LAYERS)


def test_no_upward_or_sideways_import() -> None:
    found = _upward()
    unexpected = sorted(why for key, why in found.items() if key not in ALLOWED_UPWARD)
    assert unexpected == []


def test_allowed_upward_imports_are_still_needed() -> None:
    assert sorted(set(ALLOWED_UPWARD) - set(_upward())) == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH.get(v, ())):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    assert [c for c in _cycles() if c not in KNOWN_CYCLES] == []


def test_known_cycles_are_still_there() -> None:
    assert [c for c in KNOWN_CYCLES if c not in _cycles()] == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from .server import Zipper", {"yomo.zipper.server"}),
        ("from yomo import _native", {"yomo._native"}),
        ("if TYPE_CHECKING:\n    from .server import Zipper", set()),
        ("def f():\n    from yomo.bridge import Bridge", {"yomo.bridge"}),
    ],
)
def test_the_graph_reader_sees_what_runs(source: str, expected: set[str], tmp_path: Path) -> None:
    path = tmp_path / "mesh.py"
    path.write_text(source)
    MODULES["yomo.zipper.mesh_probe"] = (path, "yomo.zipper")
    try:
        assert _imports("yomo.zipper.mesh_probe") == expected
    finally:
        del MODULES["yomo.zipper.mesh_probe"]
