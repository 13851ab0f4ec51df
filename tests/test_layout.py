"""The code's shape as the conventions ask: no module over 400 lines, no import circle, and no
test function that pytest never runs."""

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
    # the harness reaches the built-in methods through their entry points only (bench.registry)
    assert not {name for name, deps in graph.items() if name.startswith("bench") and deps & {n for n in found if n.split(".")[0] == "methods"}}


def idle_test_functions(folder) -> list[str]:
    """Module-level functions under ``folder`` that never run: a helper (no ``test`` prefix,
    not a fixture) that no test file names, and a ``test`` function in a file pytest does not
    collect (only ``test_*.py`` is). As ``path:line name``."""
    sources = {path: ast.parse(path.read_text()) for path in sorted(folder.rglob("*.py"))}
    named = set()
    for tree in sources.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                named.add(node.id)
            elif isinstance(node, ast.Attribute):
                named.add(node.attr)
            elif isinstance(node, ast.alias):
                named.add(node.name.rsplit(".", 1)[-1])
    idle = []
    for path, tree in sources.items():
        collected = path.name.startswith("test_")
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            fixture = any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)
            is_test = node.name.startswith("test")
            if (is_test and not collected) or (not is_test and not fixture and node.name not in named):
                idle.append(f"{path.relative_to(folder)}:{node.lineno} {node.name}")
    return idle


def test_every_test_function_runs():
    assert idle_test_functions(ROOT / "tests") == []


def test_the_idle_function_check_finds_what_pytest_would_skip(tmp_path):
    (tmp_path / "test_a.py").write_text(
        "import pytest\n\n"
        "def threshold_rates_match():  # lacks the prefix, called by nothing\n    assert False\n\n"
        "def helper():\n    return 1\n\n"
        "def test_uses_helper():\n    assert helper() == 1\n\n"
        "@pytest.fixture\ndef data():\n    return 2\n"
    )
    (tmp_path / "helpers.py").write_text("def test_in_a_file_pytest_skips():\n    assert False\n")
    assert idle_test_functions(tmp_path) == ["helpers.py:1 test_in_a_file_pytest_skips", "test_a.py:3 threshold_rates_match"]
