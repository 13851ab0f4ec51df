"""The code's shape as the conventions ask: no module over 400 lines, no import circle, imports
that point one way through bench's layers (docs/architecture.md), nothing under bench/ but
those packages and the commands, and no test function that pytest never runs."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGES = ("bench", "methods")
# bench's layers, lowest first: a module imports its own layer and those below, never above.
LAYERS = {
    "bench.core": 0, "bench.data": 1, "bench.training": 2, "bench.registry": 3, "bench.evaluation": 4,
    "bench.config": 5, "bench.running": 6, "bench.tuning": 7, "bench.report": 7,
}
COMMANDS = {"bench.sweep", "bench.tune", "bench.methods"}  # python -m entry points, over every layer


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
    assert {"bench.sweep", "bench.running.ray_backend", "bench.tune", "bench.running.cells"} <= set(graph)
    # the harness reaches the built-in methods through their entry points only (bench.registry)
    assert not {name for name, deps in graph.items() if name.startswith("bench") and deps & {n for n in found if n.split(".")[0] == "methods"}}


def layer_of(name: str) -> str | None:
    return next((layer for layer in LAYERS if name == layer or name.startswith(layer + ".")), None)


def test_imports_point_one_way_through_the_layers():
    found = modules()
    upward = []
    for name, path in sorted(found.items()):
        own = layer_of(name)
        for dependency in sorted(imports_of(path, set(found))):
            other = layer_of(dependency)
            if own and other and other != own and LAYERS[other] >= LAYERS[own]:
                upward.append(f"{name} -> {dependency}")
            # the methods see what a method is given (registry, training, data, metrics), never a runner
            if name.split(".")[0] == "methods" and other in ("bench.config", "bench.running", "bench.tuning", "bench.report"):
                upward.append(f"{name} -> {dependency}")
    assert upward == []


def test_bench_holds_its_layers_and_its_commands_only():
    bench = ROOT / "bench"
    packages = {f"bench.{p.name}" for p in bench.iterdir() if (p / "__init__.py").exists()}
    commands = {f"bench.{p.stem}" for p in bench.glob("*.py") if p.stem != "__init__"}
    assert packages == set(LAYERS) and commands == COMMANDS
    for package in packages:  # each face says what it holds and what it may import
        assert ast.get_docstring(ast.parse((bench / package.split(".")[1] / "__init__.py").read_text())), package


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
