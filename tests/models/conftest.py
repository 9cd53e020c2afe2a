"""MACE models as users hold them, trained here by mace-torch's own ``mace_run_train``.

Each fixture runs ``mace.cli.run_train:main`` (the ``mace_run_train`` entry point) in a fresh
subprocess: a two-head model (``two.model``, heads ``A`` and ``B`` with different E0s, used by
the default tests) and a single-head model (``tiny.model``, used by slow tests). Data: rattled
Cu/Au cells labelled by EMT under MACE's default keys ``REF_energy``/``REF_forces``. Each run
takes about 15 CPU seconds, most of it importing mace-torch (20-30 s wall on a busy machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

_COMMON = (
    "--model MACE --num_channels 8 --max_L 0 --r_max 4.0 --num_interactions 2 --correlation 2 "
    "--max_num_epochs 2 --batch_size 4 --valid_batch_size 4 --device cpu --default_dtype float64 "
    "--seed 1"
).split()

_DRIVER = textwrap.dedent(
    """
    import sys
    from mace.cli.run_train import main
    runs = [a.split("\\x1f") for a in sys.argv[1:]]
    for argv in runs:
        sys.argv = ["mace_run_train", *argv]
        main()
    """
)


def cu_au_cells(n: int, seed: int) -> list[Atoms]:
    """Rattled fcc Cu and Au cells (some with one swapped atom), labelled by EMT as MACE keys."""
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) if i % 2 else bulk("Au", "fcc", a=4.08)
        if i % 3 == 0:
            atoms = atoms.repeat((2, 1, 1)) if len(atoms) == 1 else atoms
            atoms[0].symbol = "Au" if atoms[0].symbol == "Cu" else "Cu"
        atoms.rattle(0.05, seed=seed + i)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = None
        atoms.info["REF_energy"] = energy
        atoms.arrays["REF_forces"] = forces
        frames.append(atoms)
    return frames


def _write_data(work: Path) -> None:
    from ase.io import write

    write(work / "train.xyz", cu_au_cells(8, seed=0))
    write(work / "trainB.xyz", cu_au_cells(6, seed=20))
    write(work / "valid.xyz", cu_au_cells(2, seed=40))


def _mace_run_train(work: Path, *runs: list[str]) -> None:
    """Run ``mace_run_train`` once per argument list, all in one fresh Python process."""
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, *("\x1f".join(argv) for argv in runs)],
        cwd=work,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"mace_run_train failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def two_head_files(tmp_path_factory) -> dict[str, Path]:
    """``two.model`` and ``two_compiled.model`` (heads A, B) with their data (~15 s)."""
    work = tmp_path_factory.mktemp("mace_two_heads")
    _write_data(work)
    (work / "heads.yaml").write_text(
        "heads:\n"
        "  A: {train_file: train.xyz, valid_file: valid.xyz, E0s: average}\n"
        '  B: {train_file: trainB.xyz, valid_file: valid.xyz, E0s: "{29: -1.0, 79: 2.0}"}\n'
    )
    _mace_run_train(work, ["--name", "two", "--config", "heads.yaml", *_COMMON])
    return _existing(work, two="two.model", two_compiled="two_compiled.model")


@pytest.fixture(scope="session")
def single_head_files(tmp_path_factory) -> dict[str, Path]:
    """``tiny.model`` and ``tiny_compiled.model`` (one head) with their data (~15 s)."""
    work = tmp_path_factory.mktemp("mace_single_head")
    _write_data(work)
    argv = ["--name", "tiny", "--train_file", "train.xyz", "--valid_file", "valid.xyz"]
    _mace_run_train(work, [*argv, "--E0s", "average", *_COMMON])
    return _existing(work, tiny="tiny.model", tiny_compiled="tiny_compiled.model")


def _existing(work: Path, **names: str) -> dict[str, Path]:
    files = {key: work / name for key, name in names.items()}
    files.update(train=work / "train.xyz", valid=work / "valid.xyz")
    missing = [str(p) for p in files.values() if not p.is_file()]
    assert not missing, f"mace_run_train did not write {missing}"
    return files


@pytest.fixture(scope="session")
def cu_au_test_structures() -> list[Atoms]:
    """Periodic cells and one non-periodic cluster, unlabelled."""
    cluster = Atoms("Cu3Au", positions=np.array([[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.6]]))
    return [a.copy() for a in cu_au_cells(3, seed=60)] + [cluster]


@pytest.fixture
def mace_bench_splits(tmp_path) -> dict[str, str]:
    """init / pool / test files of Cu/Au cells with MACE-keyed labels only (no calculator)."""
    from ase.io import write

    splits = {"init": cu_au_cells(4, seed=100), "pool": cu_au_cells(6, seed=200)}
    splits["test"] = cu_au_cells(3, seed=300)
    paths = {}
    for name, frames in splits.items():
        paths[name] = str(tmp_path / f"{name}.xyz")
        write(paths[name], frames)
    return paths
