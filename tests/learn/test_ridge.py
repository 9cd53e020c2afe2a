"""Ridge readout fine-tuning: the solve on synthetic designs, and the designs against SevenNet-0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from conftest import rattled
from fntk.errors import CapabilityError
from fntk.learn import FinetuneOptions
from fntk.learn.ridge import (
    ALPHA_GRID,
    ReadoutDesign,
    design_options,
    fit_readout_ridge,
    readout_designs,
    readout_weights,
)


def synthetic_designs(n: int, d: int, seed: int = 0) -> list[ReadoutDesign]:
    """Plain design data (no model needed to test the linear algebra)."""
    rng = np.random.default_rng(seed)
    designs = []
    for _ in range(n):
        n_atoms = int(rng.integers(2, 5))
        designs.append(
            ReadoutDesign(
                numbers=rng.choice([1, 8], size=n_atoms),
                energy=float(rng.normal()),
                forces=rng.normal(size=(n_atoms, 3)),
                energy_row=rng.normal(size=d),
                force_rows=rng.normal(size=(3 * n_atoms, d)),
            )
        )
    return designs


def labels_of(designs: list[ReadoutDesign], z: np.ndarray, e0: dict[int, float]):
    energies = np.array([d.predict(z)[0] + sum(e0[int(a)] for a in d.numbers) for d in designs])
    return energies, [d.predict(z)[1] for d in designs]


def test_noise_free_labels_recover_the_planted_move_and_e0():
    designs = synthetic_designs(30, 5)
    z = np.array([0.3, -1.0, 0.5, 2.0, 0.0])
    energies, forces = labels_of(designs, z, {1: -0.4, 8: 1.5})
    options = FinetuneOptions(validation_fraction=0.2)
    fit = fit_readout_ridge(designs, energies, forces, options, seed=3)
    # E0 is fitted first on energy residuals that still contain e.z, so it is only close.
    assert np.allclose(fit.coefficients, z, atol=0.05)
    assert fit.cv_loss is not None


def test_every_labelled_structure_enters_the_fit():
    """No held-out slice: changing the label of any one structure changes the fit (the first
    version held 10% out, so those labels were ignored)."""
    designs = synthetic_designs(20, 4, seed=7)
    z = np.array([0.5, -0.2, 0.1, 1.0])
    energies, forces = labels_of(designs, z, {1: 0.0, 8: 0.0})
    options = FinetuneOptions(refit_e0=False)
    base = fit_readout_ridge(designs, energies, forces, options, seed=0)
    for s in range(20):
        moved = [f + (3.0 if t == s else 0.0) for t, f in enumerate(forces)]
        fit = fit_readout_ridge(designs, energies, moved, options, seed=0)
        assert not np.allclose(fit.coefficients, base.coefficients, atol=1e-9), s


def test_solution_is_weighted_least_squares_plus_ridge():
    designs = synthetic_designs(12, 4, seed=1)
    rng = np.random.default_rng(5)
    energies = rng.normal(size=12)
    forces = [rng.normal(size=d.forces.shape) for d in designs]
    options = FinetuneOptions(validation_fraction=0.0, refit_e0=False, force_weight=7.0)
    fit = fit_readout_ridge(designs, energies, forces, options)
    # Brute force: stack the weighted rows and solve the regularised normal equations.
    n_atoms = np.array([len(d.numbers) for d in designs], dtype=float)
    m = sum(3 * n for n in n_atoms)
    rows = np.vstack(
        [np.sqrt(1.0 / 12) * np.stack([d.energy_row for d in designs]) / n_atoms[:, None]]
        + [np.sqrt(7.0 / m) * d.force_rows for d in designs]
    )
    targets = np.concatenate(
        [np.sqrt(1.0 / 12) * (energies - [d.energy for d in designs]) / n_atoms]
        + [np.sqrt(7.0 / m) * (f - d.forces).ravel() for f, d in zip(forces, designs)]
    )
    gram = rows.T @ rows
    relative = fit.alpha / (np.trace(gram) / 4)
    assert min(abs(relative / a - 1) for a in ALPHA_GRID) < 1e-9
    expected = np.linalg.solve(gram + fit.alpha * np.eye(4), rows.T @ targets)
    np.testing.assert_allclose(fit.coefficients, expected, rtol=1e-9, atol=1e-12)


def test_noisy_labels_choose_a_stronger_ridge_than_clean_ones():
    designs = synthetic_designs(40, 8, seed=2)
    z = np.linspace(-1, 1, 8)
    energies, forces = labels_of(designs, z, {1: 0.0, 8: 0.0})
    options = FinetuneOptions(validation_fraction=0.25, refit_e0=False)
    clean = fit_readout_ridge(designs, energies, forces, options)
    rng = np.random.default_rng(0)
    noisy_forces = [f + 20.0 * rng.normal(size=f.shape) for f in forces]
    noisy = fit_readout_ridge(designs, energies, noisy_forces, options)
    assert noisy.alpha > clean.alpha


def test_huber_loss_is_refused():
    designs = synthetic_designs(4, 2)
    with pytest.raises(CapabilityError, match="squared errors"):
        fit_readout_ridge(
            designs, np.zeros(4), [d.forces for d in designs], FinetuneOptions(loss="huber")
        )


@pytest.mark.parametrize("dim", [6, 128])
def test_designs_predict_what_sevennet_predicts_with_the_moved_readout(dim):
    """The linear model is readout fine-tuning: the real SevenNet-0 with the readout weights
    of the fit gives the same energies and forces (float64, sketched and exact readout)."""
    from fntk.models import load_backend

    backend = load_backend("sevennet-0", device="cpu", dtype=torch.float64)
    options = design_options(dim).model_copy(update={"dtype": "float64"})
    structures = [rattled(molecule(name), s) for s, name in enumerate(["H2O", "CH3OH", "NH3"])]
    designs = readout_designs(backend, structures, options)
    z = np.random.default_rng(0).normal(scale=0.5, size=designs[0].energy_row.shape)
    weights = readout_weights(backend, z, options)
    params = backend.parameter_group("readout")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    try:
        predicted = backend.predict(structures)
    finally:
        backend.restore_pretrained()
    for design, (energy, forces) in zip(designs, predicted):
        e, f = design.predict(z)
        assert abs(e - design.energy) > 1e-3  # the move changes the model
        assert e == pytest.approx(energy, abs=1e-8)
        np.testing.assert_allclose(f, forces.numpy(), atol=1e-8)


def test_models_without_a_linear_readout_are_refused(mace64, small_structures):
    options = design_options(4).model_copy(update={"dtype": "float64"})
    with pytest.raises(CapabilityError, match="no linear readout"):
        readout_designs(mace64, small_structures[:1], options)


def _test_force_rmse(fit, designs, forces) -> float:
    errors = [d.predict(fit.coefficients)[1] - f for d, f in zip(designs, forces)]
    return float(np.sqrt(np.mean(np.concatenate([e.ravel() for e in errors]) ** 2)))


def test_adding_labels_from_the_test_distribution_does_not_raise_the_test_error():
    """Nested iid training sets from one distribution (heavy-tailed, partly unexplainable
    force residuals, like bond-stretched geometries): the mean test force RMSE over draws
    never rises by more than 2% when labels are added, and falls overall (errors against the
    noise-free test forces: the part a learner can fix)."""
    d, sizes, draws = 16, [3, 5, 8, 12, 20, 32, 64], 12
    z = np.linspace(-1.0, 1.0, d)
    rng = np.random.default_rng(11)

    def sample(n: int, seed: int):
        designs = synthetic_designs(n, d, seed=seed)
        energies, forces = labels_of(designs, z, {1: -0.3, 8: 0.7})
        r = np.random.default_rng(seed + 1)
        noisy = [f + 1.0 * r.standard_t(3, size=f.shape) for f in forces]
        return designs, energies, noisy, forces

    test_designs, _, _, test_forces = sample(300, 999)
    curves = np.zeros((draws, len(sizes)))
    for draw in range(draws):
        designs, energies, forces, _ = sample(sizes[-1], int(rng.integers(1_000_000)))
        for k, n in enumerate(sizes):
            fit = fit_readout_ridge(
                designs[:n], energies[:n], forces[:n], FinetuneOptions(), seed=draw
            )
            curves[draw, k] = _test_force_rmse(fit, test_designs, test_forces)
    mean = curves.mean(axis=0)
    assert np.all(mean[1:] <= 1.02 * mean[:-1]), mean
    assert mean[-1] < 0.5 * mean[0], mean
