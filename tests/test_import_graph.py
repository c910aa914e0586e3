"""The package's modules import one way only: no cycle, counting imports made inside functions (issue 22)."""

from __future__ import annotations

import ast
from pathlib import Path

import intent_edge

PACKAGE_ROOT = Path(intent_edge.__file__).parent
PACKAGE = "intent_edge"


def module_names() -> dict[str, Path]:
    """Each module's dotted name and its source; C extensions (``_fastencode.c``) are modules too, with no
    Python imports, whether or not they are built here."""
    names = {}
    for path in [*PACKAGE_ROOT.rglob("*.py"), *PACKAGE_ROOT.rglob("*.c")]:
        parts = (PACKAGE, *path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def is_type_checking_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(tree: ast.AST, current: str, is_package: bool, modules: set[str]):
    """Every module of the package that ``tree`` imports, at any depth, except under ``if TYPE_CHECKING``.

    ``import a.b`` imports ``a.b`` (not the package ``a``); ``from a import name`` imports ``a.name`` where
    that is a module, and ``a`` itself otherwise.
    """
    pending = [tree]
    while pending:
        node = pending.pop()
        if is_type_checking_block(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = current.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    yield f"{base}.{alias.name}"
                elif base in modules:
                    yield base
        pending.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    names = module_names()
    graph = {}
    for name, path in names.items():
        if path.suffix == ".c":
            graph[name] = set()
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = set(imported_modules(tree, name, path.name == "__init__.py", set(names))) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # bench/sessions.py imports the raw-field graph only inside a function
    assert "intent_edge.raw_graph" in graph["intent_edge.bench.sessions"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
