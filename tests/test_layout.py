"""The code's shape as the conventions ask: no module over 400 lines, no import circle."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGES = ("bench", "methods")


def modules() -> dict[str, object]:
    """Dotted name -> path of every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path, known: set[str]) -> set[str]:
    """The project modules a module imports anywhere in it (lazy imports inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in known}


def test_no_module_over_400_lines():
    long = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in long.items() if n > 400} == {}


def test_no_import_circle():
    found = modules()
    graph = {name: imports_of(path, set(found)) - {name} for name, path in found.items()}
    # a package's __init__ importing its own submodules is not a circle of concerns
    graph = {name: {d for d in deps if not d.startswith(name + ".")} for name, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dependency in sorted(graph[name]):
            if state.get(dependency) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(dependency):] + [dependency]))
            if dependency not in state:
                visit(dependency, trail + [dependency])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert {"bench.sweep", "bench.ray_backend", "bench.tune", "bench.cells"} <= set(graph)
