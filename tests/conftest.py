"""Shared fixtures: real SevenNet-0, a small MACE model built here, and small structures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule

MACE_ELEMENTS = (1, 6, 7, 8, 29)


def build_small_mace(seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A two-layer ScaleShiftMACE for H, C, N, O, Cu with random weights.

    No MACE foundation model can be downloaded here, so interface tests use this one; it is
    built with mace-torch's own modules, the same classes MACE-MP-0 and MACE-OFF are made of.
    """
    from fntk.models._compat import import_e3nn

    import_e3nn()
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = modules.ScaleShiftMACE(
            r_max=4.0,
            num_bessel=6,
            num_polynomial_cutoff=5,
            max_ell=2,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=2,
            num_elements=len(MACE_ELEMENTS),
            hidden_irreps=o3.Irreps("16x0e + 16x1o"),
            MLP_irreps=o3.Irreps("8x0e"),
            atomic_energies=np.array([-13.6, -1029.0, -1485.0, -2042.0, -45000.0]) / 10,
            avg_num_neighbors=8.0,
            atomic_numbers=list(MACE_ELEMENTS),
            correlation=2,
            gate=torch.nn.functional.silu,
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
    return model.to(dtype)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """Tests never write to the user's cache (the reference moments of a PCA basis)."""
    from fntk.features.basis import CACHE_DIR_VARIABLE

    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path_factory.getbasetemp() / "fntk-cache"))


@pytest.fixture(scope="session")
def sevennet64():
    """Real SevenNet-0 (from the sevenn wheel) in float64."""
    from fntk.models import load_backend

    return load_backend("sevennet-0", device="cpu", dtype=torch.float64)


@pytest.fixture(scope="session")
def mace_model_file(tmp_path_factory) -> str:
    """Path of a saved small MACE model (saved whole, as mace-torch does)."""
    path = tmp_path_factory.mktemp("mace") / "small.model"
    torch.save(build_small_mace(), path)
    return str(path)


@pytest.fixture(scope="session")
def mace64(mace_model_file):
    from fntk.models import load_backend

    return load_backend(f"mace:{mace_model_file}", device="cpu", dtype=torch.float64)


def rattled(atoms: Atoms, seed: int, stdev: float = 0.05) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


def made_up_molecules(names: list[str], seed: int):
    """Rattled molecules ``names`` with made-up energies and forces (a :class:`LabelledSet`):
    for tests where labels only need to exist and differ."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from fntk.learn import LabelledSet

    rng = np.random.default_rng(seed)
    structures = []
    for k, name in enumerate(names):
        atoms = rattled(molecule(name), seed * 100 + k, stdev=0.1)
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=-3.0 * len(atoms) + rng.normal(scale=0.1),
            forces=rng.normal(scale=0.5, size=(len(atoms), 3)),
        )
        structures.append(atoms)
    return LabelledSet.from_structures(structures)


@pytest.fixture
def small_structures() -> list[Atoms]:
    """Mixed pool: two molecules and a periodic Cu(111) slab with an O adsorbate."""
    slab = fcc111("Cu", (2, 2, 2), vacuum=5.0)
    add_adsorbate(slab, "O", 1.5, "fcc")
    return [
        rattled(molecule("CH4"), 1),
        rattled(molecule("CH3CH2OH"), 2),
        rattled(slab, 3),
    ]
