"""The import graph of dalib: no private names across modules, no upward imports, no cycles.

Every module of ``dalib`` is parsed with :mod:`ast` (nothing is imported), and every import
statement, at module level or inside a function, is resolved to the dalib module it names.

Layers, lowest first; a module may import from its own layer and the layers below it:

====  ==============================================================================
0     ``backend``, ``_validate``, ``random``: arrays and randomness (no model)
1     ``covariance``, ``observations``, ``models``, ``ssm``, ``setups``, ``metrics``,
      ``autodiff``, ``plotting``, ``multifidelity``: the state-space model, ready-made
      models, the scores, Monte Carlo estimators
2     ``da``: the data assimilation methods and the cycling driver
3     ``learning``: learning models and covariances with data assimilation
4     ``exercises``: the book's self-checks
5     ``dalib`` (the package ``__init__``): re-exports everything
====  ==============================================================================

Private *names* (a leading underscore) stay inside their module.  A module that several
modules share, such as ``dalib.da._kernels``, may have a private module name, but the names
it offers are public (no underscore).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "dalib"

LAYERS = {
    "backend": 0,
    "_validate": 0,
    "random": 0,
    "report": 0,
    "covariance": 1,
    "observations": 1,
    "models": 1,
    "ssm": 1,
    "setups": 1,
    "metrics": 1,
    "autodiff": 1,
    "plotting": 1,
    "multifidelity": 1,
    "da": 2,
    "learning": 3,
    "exercises": 4,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from ... import`` statement."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str):
    """``(target module, imported name or None, line, top level)`` for every dalib import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "dalib":
                    yield alias.name, None, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            if target.split(".")[0] != "dalib":
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:  # a submodule, not a name
                    yield f"{target}.{alias.name}", None, node.lineno, id(node) in top
                else:
                    yield target, alias.name, node.lineno, id(node) in top


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return max(LAYERS.values()) + 1  # the package __init__
    return LAYERS[parts[1]]


def test_every_module_has_a_layer():
    unknown = {m.split(".")[1] for m in MODULES if "." in m} - set(LAYERS)
    assert not unknown, f"add these modules to LAYERS in this test: {sorted(unknown)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_module_border(module):
    bad = [
        f"line {line}: from {target} import {name}"
        for target, name, line, _ in _imports(module)
        if name is not None and name.startswith("_") and target != module
    ]
    assert not bad, f"{module} imports private names of other modules: {bad}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_lower_layer_imports_a_higher_one(module):
    bad = [
        f"line {line}: {target} (layer {_layer(target)})"
        for target, _, line, _ in _imports(module)
        if _layer(target) > _layer(module)
    ]
    assert not bad, f"{module} (layer {_layer(module)}) imports from a higher layer: {bad}"


def test_module_level_imports_have_no_cycles():
    graph = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _, top in _imports(module):
            # `from pkg import name` loads pkg's __init__ first; count the edge to pkg.
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if top and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    # A package's __init__ importing its own submodules is the usual re-export pattern.
    for module in graph:
        graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}

    state = {}

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_checks_see_a_private_import():
    """The parser finds a private import (so the tests above can fail)."""
    tree = ast.parse("from ..enkf import _etkf, etkf_analysis\nimport dalib.da._kernels\n")
    node = tree.body[0]
    assert _resolve("dalib.da.methods", False, node) == "dalib.enkf"
    assert _resolve("dalib.da", True, node) == "dalib.enkf"
    assert [a.name for a in node.names] == ["_etkf", "etkf_analysis"]
    assert _layer("dalib.exercises") > _layer("dalib.da") > _layer("dalib.setups")
