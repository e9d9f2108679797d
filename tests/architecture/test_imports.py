"""The package's import graph: no cycle anywhere, and the diffusion engine imports nothing above it.

Every ``import`` and ``from ... import`` of every module of ``mmlatent`` counts, also those inside
functions (a function-level import is a dependency too, only a later one). ``from pkg import
name`` is an edge to the module ``pkg.name`` when there is one, else to ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mmlatent

ROOT = Path(mmlatent.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in ROOT.rglob("*.py")}


def _resolve(target: str) -> str | None:
    """The package module ``target`` names, or its closest enclosing package module."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _imports(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "mmlatent" and (resolved := _resolve(target)) and resolved != name:
                found.add(resolved)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def test_the_graph_is_read():
    assert "mmlatent.pipeline" in GRAPH and "mmlatent.diffusion.sde" in GRAPH
    assert "mmlatent.build" in GRAPH["mmlatent.pipeline"]


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


#: Modules below every layer: they import no module of mmlatent (checked below), so any module may use them.
LEAVES = {"mmlatent.progress", "mmlatent.specs"}


def test_the_diffusion_engine_imports_nothing_above_it():
    above = {name: sorted(target for target in targets if not target.startswith("mmlatent.diffusion")
                          and target not in LEAVES)
             for name, targets in GRAPH.items() if name.startswith("mmlatent.diffusion")}
    assert not any(above.values()), {name: targets for name, targets in above.items() if targets}


def test_leaves_import_nothing_of_the_package():
    assert {leaf: sorted(GRAPH[leaf]) for leaf in LEAVES} == {leaf: [] for leaf in LEAVES}
