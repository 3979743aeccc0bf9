"""No import cycles in the library: module-level, function-level and TYPE_CHECKING imports all count.

A cycle hidden in a function body still ties its modules together (each needs the other to make
sense, and moving either drags the other along), so the graph is read from every `import`
statement anywhere in a module, with `ast`, without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "aixchange_images"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# Cycles not broken yet. This list only shrinks: a new cycle, or a listed one that grows, fails the
# test; a listed one that is gone fails it too, until it is taken off the list.
ALLOWED_CYCLES: set[frozenset[str]] = set()

Edges = dict[str, dict[str, int]]  # module -> {module it imports: first line that does}


def _module_names(root: Path) -> dict[Path, str]:
    """Each module's node in the graph: `budget` for budget.py, `providers.openai` for providers/openai.py,
    `providers` for providers/__init__.py."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names[path] = ".".join(parts)
    return names


def _targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool, modules: set[str]) -> list[str]:
    """The package's modules an import statement names (`from . import a, b`, `from .a import x`,
    `from ..config import X`, `import aixchange_images.providers.base`, ...)."""
    if isinstance(node, ast.Import):
        dotted = [alias.name.split(".") for alias in node.names]
        return [".".join(parts[1:]) for parts in dotted if parts[0] == PACKAGE and len(parts) > 1]
    if node.level == 0:
        if not (node.module or "").startswith(PACKAGE):
            return []
        base = (node.module or "").split(".")[1:]
    else:
        package = here.split(".") if is_package else here.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)] + [p for p in (node.module or "").split(".") if p]
    named = [".".join([*base, alias.name]) for alias in node.names]
    found = [name for name in named if name in modules]  # `from . import a` names modules
    return found or ([".".join(base)] if base else [])


def import_graph(root: Path = ROOT) -> Edges:
    names = _module_names(root)
    modules = set(names.values())
    graph: Edges = {}
    for path, here in names.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, here, path.name == "__init__.py", modules):
                    if target in modules and target != here:
                        edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[here] = edges
    return graph


def cycles(graph: Edges) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def loop_through(graph: Edges, component: frozenset[str]) -> str:
    """One loop inside a component, with the line of each import: `a -> b (a.py:12) -> ... -> a`."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to `start`
        module = queue.pop(0)
        for target in sorted(graph[module]):
            if target == start:
                loop = [*paths[module], start]
                steps = [start] + [f"{b} ({a}.py:{graph[a][b]})" for a, b in zip(loop, loop[1:], strict=False)]
                return " -> ".join(steps)
            if target in component and target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    raise AssertionError(f"no loop through {sorted(component)}")


def describe(graph: Edges, components: set[frozenset[str]]) -> str:
    return "\n".join(f"  {sorted(c)}: {loop_through(graph, c)}" for c in sorted(components, key=sorted))


def test_the_library_has_no_import_cycle_beyond_the_ones_listed_to_break():
    graph = import_graph()
    found = cycles(graph)

    new = found - ALLOWED_CYCLES
    assert not new, (
        f"Import cycles (function-level imports count too); break them by moving code:\n{describe(graph, new)}"
    )
    gone = ALLOWED_CYCLES - found
    assert not gone, f"These cycles are broken now; take them off ALLOWED_CYCLES: {[sorted(c) for c in gone]}"


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("budget", "calls"),  # module level: `from . import calls`
        ("providers.local", "artwork"),  # in a function body, two levels up
        ("prompts", "providers.base"),  # under `if TYPE_CHECKING:`
        ("providers.openai", "providers.base"),  # `from .base import ...` inside the subpackage
        ("provider_registry", "providers"),
        ("engines", "migrations"),
    ],
)
def test_the_graph_sees_every_kind_of_import(importer, imported):
    assert imported in import_graph()[importer]


def test_a_cycle_through_a_function_level_import_is_found_and_shown(tmp_path):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text('__version__ = "0"\n')
    (package / "a.py").write_text("from . import __version__\nfrom .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from aixchange_images import c\n")
    (package / "c.py").write_text("import aixchange_images.a\n")
    (package / "d.py").write_text("from .a import x\n")

    graph = import_graph(package)

    assert cycles(graph) == {frozenset({"a", "b", "c"})}
    assert loop_through(graph, frozenset({"a", "b", "c"})) == "a -> b (a.py:2) -> c (b.py:2) -> a (c.py:1)"
