"""The layout of docs/design.rst, checked: module sizes, layers, import cycles.

Imports are read from the source (every ``import`` statement, function-level
ones included), so the check needs no import of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src"
PACKAGE = SRC / "wavephase"

# Lowest first; a module may import its own layer's package and lower layers only.
LAYERS: list[tuple[str, ...]] = [
    ("exceptions",), ("io",), ("validation",), ("resources",), ("cores",), ("runs",), ("testing",),  # the foundation, in order
    ("data",),
    ("filters", "physics"),
    ("scattering",),
    ("harmonics",),
    ("synthesis", "sparse"),
    ("models",),
    ("metrics", "distributed"),
    ("experiments",),
    ("report",),
    ("cli",),
    ("__main__",),
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the module pkg.sub when it exists.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        found.update(t for t in targets if t == "wavephase" or t.startswith("wavephase."))
    return found


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if len(parts) == 1:
        return "wavephase", len(LAYERS)  # the top-level API sits above everything
    return parts[1], LAYER.get(parts[1], -1)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_top_level_module_has_a_layer():
    unknown = sorted({_layer(m)[0] for m in _modules() if _layer(m)[1] < 0})
    assert not unknown, f"add these to LAYERS (and to docs/design.rst): {unknown}"


def test_no_module_over_500_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (limit {MAX_LINES} lines): {long}"


def test_no_upward_import():
    upward = []
    for module, targets in _graph().items():
        if module == "wavephase":
            continue
        own, level = _layer(module)
        for target in targets:
            other, other_level = _layer(target)
            if other == own:
                continue
            if other_level >= level or (own == "synthesis" and other == "physics"):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run up (or across) the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # A package importing its own modules (re-exports) is not a cycle of the design.
            real = [m for m in component if not any(o.startswith(m + ".") for o in component)]
            if len(real) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("package", sorted({p.parent for p in PACKAGE.rglob("__init__.py")} - {PACKAGE}))
def test_package_init_only_reexports(package: Path):
    tree = ast.parse((package / "__init__.py").read_text())
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    assert not defined, f"{package.name}/__init__.py defines {defined}; move them to a module and re-export"
