"""The package's import graph: no cycles, and the layering of docs/LAYOUT (data flows one way).

The graph is read from the source (every `import`, also the ones inside functions), so a
cycle hidden behind a lazy import counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / "lrcn_tf").rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The lrcn_tf modules `path` imports (`from pkg import sub` counts as pkg.sub)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            names = [n if n in modules else node.module for n in names]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_lrcn_tf():
    assert _cycle(_graph()) is None


@pytest.mark.parametrize("dataset", ["ucf101", "captions", "tacos"])
def test_dataset_generator_does_not_import_its_preparer(dataset):
    graph = _graph()
    synthetic = f"lrcn_tf.data.{dataset}.synthetic"
    assert synthetic in graph
    assert not {m for m in graph[synthetic] if m.startswith(f"lrcn_tf.data.{dataset}.prepare")}


def test_library_imports_no_program():
    for path in (ROOT / "lrcn_tf").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("reproduce", "benchmarks", "tests")), path
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("reproduce", "benchmarks", "tests")), path
