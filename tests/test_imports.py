"""The package's import graph, read from the source (every ``from . import`` and ``from .x import``,
at module level or inside a function): no cycle, and the layering CONTRIBUTING.md states."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lib" / "quadnet"
PRESENTATION = {"plotting", "book", "explorer"}


def _module_name(path: Path) -> str:
    """'ode', 'sgd' (its __init__), 'sgd._plan'; the package's own __init__ is '__init__'."""
    parts = path.relative_to(PKG).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts) or "__init__"


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        here = [] if name == "__init__" else name.split(".")
        package = here if path.name == "__init__.py" else here[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                targets = [".".join(base + node.module.split("."))]
            else:  # from . import x: x is a module, or a name of the package
                targets = [
                    ".".join(base + [a.name]) if ".".join(base + [a.name]) in modules else ".".join(base)
                    for a in node.names
                ]
            graph[name] |= {t or "__init__" for t in targets} - {name}
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_graph_is_read():
    g = import_graph()
    assert "ode" in g["sgd"] and "_validate" in g["ode"] and "sgd._weights_numpy" in g["sgd"]


def test_no_import_cycle():
    graph = {m: deps - {"__init__"} for m, deps in import_graph().items() if m != "__init__"}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("module, allowed", [("backend", set()), ("_common", set()), ("_validate", {"backend"})])
def test_the_bottom_layers(module, allowed):
    assert import_graph()[module] <= allowed


def test_science_modules_never_import_the_presentation_layer():
    g = import_graph()
    offenders = {m: g[m] & PRESENTATION for m in g if m not in PRESENTATION | {"__init__"} and g[m] & PRESENTATION}
    assert not offenders
