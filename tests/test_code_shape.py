"""The package's shape: no import cycles between its files (counting imports inside
functions; `if TYPE_CHECKING:` imports are for annotations only and do not count), no
file over 300 lines, no mixins."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "agentrt"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }


def _imported(node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The package modules an import statement loads (a package's `__init__` aside)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        named = [f"{node.module}.{a.name}" for a in node.names]
        found = [m for m in named if m in modules]
        return found or ([node.module] if node.module in modules else [])
    return []


def import_graph() -> nx.DiGraph:
    modules = _modules()
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    graph = nx.DiGraph()
    for name, path in modules.items():
        if name in packages:
            continue  # a package re-exports its modules: it is not one of the files
        tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) not in skip:
                graph.add_edges_from(
                    (name, target) for target in _imported(node, modules) if target not in packages
                )
    return graph


def test_no_import_cycles_between_files():
    graph = import_graph()
    assert graph.number_of_edges() > 200  # the graph was read
    assert list(nx.simple_cycles(graph)) == []


def test_no_file_over_300_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}  # fmt: skip
    assert long == {}


def test_no_mixins():
    names = [
        node.name
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and "mixin" in node.name.lower()
    ]
    assert names == []
