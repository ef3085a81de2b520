"""The transport's shape (issue 14 item 1): no import cycle between its modules, no
module over ~400 lines without a reason at its top, and QUIC-library private names
read only in ``_compat.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import yomo.transport

PACKAGE = Path(yomo.transport.__file__).parent
MODULES = {path.stem: path for path in sorted(PACKAGE.glob("*.py"))}
#: Modules this rule leaves to their owners (the native data path's glue).
NOT_CHECKED = {"native"}


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text())


def _local_imports(name: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found & set(MODULES)


def test_no_import_cycle_between_transport_modules():
    graph = {name: _local_imports(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "import cycle: " + " -> ".join((*path, name))
        if name in done:
            return
        for dep in graph[name]:
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_long_modules_say_why_at_their_top():
    for name, path in MODULES.items():
        if name in NOT_CHECKED:
            continue
        lines = path.read_text().count("\n")
        if lines > 420:
            doc = ast.get_docstring(_tree(name)) or ""
            assert "400 lines" in doc, f"{name}.py has {lines} lines and no reason at its top"


def _own_private_names() -> set[str]:
    """Underscore names our transport code itself defines (attributes and functions)."""
    names: set[str] = set()
    for name in MODULES:
        for node in ast.walk(_tree(name)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {n for n in names if n.startswith("_")}


def test_library_private_names_are_read_only_in_compat():
    ours = _own_private_names()
    found = []
    for name in MODULES:
        if name in NOT_CHECKED or name == "_compat":
            continue
        for node in ast.walk(_tree(name)):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in ours
            ):
                found.append(f"{name}.py:{node.lineno}: {ast.unparse(node)}")
    assert found == [], "read these through transport/_compat.py:\n" + "\n".join(found)
