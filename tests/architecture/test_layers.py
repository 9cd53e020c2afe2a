"""The package's shape: imports point down the layers, and the selection engine is torch-free.

Layers, bottom to top (DESIGN.md section 1): the core modules (errors, chunk contract, registry,
shared option types), io, data (structure generators), models, features, select and report
(select sees arrays only), learn (fine-tuning and readouts), engine and parallel (how stages
run over chunks; parallel is the only module that imports Dask), pipeline and bench (the
jobs), cli. A module may import its own
layer and the layers below it, never above. The package root ``fntk/__init__.py`` is the facade
and exempt (it imports :func:`fntk.next_batch` lazily).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fntk

PACKAGE = Path(fntk.__file__).parent
CORE = {"errors", "chunk", "registry", "options"}
LAYERS = {
    **{name: 0 for name in CORE},
    "io": 1,
    "data": 2,
    "models": 3,
    "features": 4,
    "select": 5,
    "report": 5,
    "learn": 6,
    "engine": 6,
    "parallel": 6,
    "predict": 6,
    "pipeline": 7,
    "bench": 7,
    "cli": 8,
}
ARRAYS_ONLY = {"select"}
"""Layers that may import the core only (no torch, no ASE)."""


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute fntk module) of every import in ``path``, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("fntk."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("fntk.")]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_module_belongs_to_a_layer():
    unknown = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()} - set(
        LAYERS
    )
    assert not unknown, f"modules outside the declared layers: {sorted(unknown)}"


def test_imports_point_down_the_layers():
    violations = []
    for path in _modules():
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        violations += [f"{path.relative_to(PACKAGE)}: {v}" for v in _violations(path, own)]
    assert not violations, "imports against the layer order:\n" + "\n".join(violations)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fntk.pipeline import next_batch\n")
    assert _imports(bad) == [(2, "fntk.pipeline")]
    assert LAYERS[_layer_of("fntk.pipeline")] > LAYERS["select"]


def _violations(path: Path, own: str) -> list[str]:
    """Imports of ``path`` (a module of layer ``own``) against the layer order."""
    found = []
    for line, module in _imports(path):
        target = _layer_of(module)
        if target not in LAYERS:
            continue
        upward = LAYERS[target] > LAYERS[own]
        sideways = own in ARRAYS_ONLY and target != own and target not in CORE
        if upward or sideways:
            found.append(f"{own}:{line} imports {module}")
    return found


def test_the_engines_sit_below_the_job(tmp_path):
    """parallel.py used to import fntk.pipeline (its stages and options): now refused."""
    old = tmp_path / "parallel.py"
    old.write_text(
        "from fntk.engine import ModelSource\n"
        "from fntk.pipeline.stages import pool_stage\n"
        "from fntk.pipeline.options import RunOptions\n"
    )
    assert _violations(old, "parallel") == [
        "parallel:2 imports fntk.pipeline.stages",
        "parallel:3 imports fntk.pipeline.options",
    ]
    assert _violations(PACKAGE / "parallel.py", "parallel") == []
    assert _violations(PACKAGE / "engine.py", "engine") == []


@pytest.mark.parametrize("module", ["fntk.select", "fntk.features.registry", "fntk.cli.types"])
def test_import_loads_neither_torch_nor_ase(module):
    code = f"import sys, {module}; print('torch' in sys.modules, 'ase' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


DASK_MODULES = ("dask", "distributed", "dask_jobqueue")


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
    return names


def test_only_parallel_imports_dask():
    importers = sorted(
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if _third_party_imports(p) & set(DASK_MODULES)
    )
    assert importers == ["parallel.py"]


@pytest.mark.parametrize("module", ["fntk", "fntk.pipeline", "fntk.engine", "fntk.cli.main"])
def test_import_does_not_load_dask(module):
    code = f"import sys, {module}; print(any(m in sys.modules for m in {DASK_MODULES!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"], out.stderr
