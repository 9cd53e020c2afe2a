"""The NTK maps against brute-force autograd Jacobians, finite differences and symmetries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from fntk.features import ENERGY_ROW, FORCE_ROW, build_feature_map, default_options, sketch_matrix

# (backend fixture, parameter group, sketch width): hidden path for SevenNet-0's readout,
# parameter path (sketched) for the other groups and for MACE.
CASES = [
    ("sevennet64", "readout", 6),
    ("sevennet64", "last-interaction", 3),
    ("mace64", "readout", 8),
    ("mace64", "all", 4),
]


def joint_map(group: str, dim: int, **overrides):
    options = default_options(
        "joint", group=group, dim=dim, dtype="float64", per_atom=False, **overrides
    )
    return build_feature_map(options)


def brute(cache, reference, backend, atoms, group, key):
    if key not in cache:
        cache[key] = reference.jacobians(backend, atoms, group)
    return cache[key]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize(("backend_name", "group", "dim"), CASES)
def test_joint_map_equals_brute_force(
    request, brute_force_cache, reference, small_structures, backend_name, group, dim
):
    backend = request.getfixturevalue(backend_name)
    fmap = joint_map(group, dim, force_weight=0.5)
    chunk = fmap(backend, small_structures, source_index=[7, 8, 9])
    omega = fmap.projection(backend)
    assert chunk.n_features == fmap.n_features(backend) == dim
    np.testing.assert_array_equal(chunk.source_index, [7, 8, 9])
    for j, atoms in enumerate(small_structures):
        if backend_name == "sevennet64" and j == 1:
            continue  # brute force on SevenNet-0 is slow; ethanol is checked on MACE
        energy_grad, force_jac = brute(
            brute_force_cache, reference, backend, atoms, group, (backend_name, group, j)
        )
        expected = torch.cat([(energy_grad @ omega)[None], 0.5 * force_jac @ omega]).numpy()
        assert chunk.block(j).shape == (1 + 3 * len(atoms), dim)
        assert relative_error(chunk.block(j), expected) < 1e-6
        kinds = chunk.block_kinds(j)
        assert kinds[0] == ENERGY_ROW and np.all(kinds[1:] == FORCE_ROW)


@pytest.mark.parametrize(("backend_name", "group", "dim"), [CASES[0], CASES[3]])
def test_energy_and_force_maps_equal_brute_force(
    request, brute_force_cache, reference, small_structures, backend_name, group, dim
):
    backend = request.getfixturevalue(backend_name)
    energy_map = build_feature_map(
        default_options("energy-ntk", group=group, dim=dim, dtype="float64", batch_size=2)
    )
    force_map = build_feature_map(
        default_options("force-ntk", group=group, dim=dim, dtype="float64", batch_size=2)
    )
    energy_chunk = energy_map(backend, small_structures)
    force_chunk = force_map(backend, small_structures)
    omega = energy_map.projection(backend)
    assert energy_chunk.n_rows == len(small_structures)
    assert np.all(force_chunk.row_kind == FORCE_ROW)
    for j, atoms in enumerate(small_structures):
        if backend_name == "sevennet64" and j == 1:
            continue
        energy_grad, force_jac = brute(
            brute_force_cache, reference, backend, atoms, group, (backend_name, group, j)
        )
        per_atom = (energy_grad @ omega)[None].numpy() / len(atoms)
        assert relative_error(energy_chunk.block(j), per_atom) < 1e-6
        assert relative_error(force_chunk.block(j), (force_jac @ omega).numpy()) < 1e-6


def test_unsketched_when_group_is_small(mace64, reference, small_structures):
    """P <= d: exact Jacobian columns (identity Omega), d_eff = P."""
    atoms = small_structures[0]
    fmap = build_feature_map(default_options("force-ntk", group="readout", dtype="float64"))
    n_parameters = sum(p.numel() for p in mace64.parameter_group("readout").values())
    assert fmap.n_features(mace64) == n_parameters < 512
    _, force_jac = reference.jacobians(mace64, atoms, "readout")
    chunk = fmap(mace64, [atoms])
    assert relative_error(chunk.values, force_jac.numpy()) < 1e-6


def test_sevennet_readout_exact_basis_is_an_isometry(sevennet64, small_structures):
    """d >= F: Omega_eff has orthonormal columns spanning the readout gradients."""
    fmap = build_feature_map(default_options("force-ntk", group="readout", dtype="float64"))
    omega = fmap.projection(sevennet64)
    assert omega.shape == (8256, 128)
    torch.testing.assert_close(omega.T @ omega, torch.eye(128, dtype=torch.float64))


@pytest.mark.parametrize(("backend_name", "group", "dim"), [CASES[0], CASES[2]])
def test_force_rows_equal_finite_differences(
    request, reference, small_structures, backend_name, group, dim
):
    backend = request.getfixturevalue(backend_name)
    atoms = small_structures[1]
    fmap = build_feature_map(default_options("force-ntk", group=group, dim=dim, dtype="float64"))
    omega = fmap.projection(backend)[:, :3]
    norms = omega.norm(dim=0)
    columns = reference.finite_difference_force_columns(backend, atoms, group, omega / norms, 1e-4)
    expected = (columns * norms).numpy()
    features = fmap(backend, [atoms]).values[:, :3]
    assert relative_error(features, expected) < 1e-4


def _gram(block: np.ndarray) -> np.ndarray:
    return block.T @ block


@pytest.mark.parametrize(("backend_name", "group", "dim"), [CASES[0], CASES[3]])
def test_kernel_invariant_under_rigid_motion_and_permutation(
    request, small_structures, backend_name, group, dim
):
    backend = request.getfixturevalue(backend_name)
    fmap = joint_map(group, dim)
    moved = []
    rng = np.random.default_rng(0)
    for atoms in small_structures[1:]:
        other = atoms.copy()
        other.rotate(37.0, (1.0, 2.0, -0.5), rotate_cell=True)
        other.translate((0.3, -1.1, 2.0))
        moved.append(other[rng.permutation(len(other))])
    chunk = fmap(backend, [*small_structures[1:], *moved])
    for j in range(2):
        gram, gram_moved = _gram(chunk.block(j)), _gram(chunk.block(j + 2))
        np.testing.assert_allclose(gram_moved, gram, rtol=1e-7, atol=1e-9 * np.abs(gram).max())
    kernel = np.sum(_gram(chunk.block(0)) * _gram(chunk.block(1)))
    kernel_moved = np.sum(_gram(chunk.block(2)) * _gram(chunk.block(3)))
    assert kernel_moved == pytest.approx(kernel, rel=1e-7)


@pytest.mark.parametrize(("backend_name", "group", "dim"), [CASES[0], CASES[3]])
def test_force_rows_sum_to_zero_over_atoms(request, small_structures, backend_name, group, dim):
    """The pitfall of DESIGN.md section 2: pooling force rows over atoms gives a zero feature."""
    backend = request.getfixturevalue(backend_name)
    fmap = build_feature_map(default_options("force-ntk", group=group, dim=dim, dtype="float64"))
    chunk = fmap(backend, small_structures)
    for j, atoms in enumerate(small_structures):
        rows = chunk.block(j).reshape(len(atoms), 3, dim)
        assert np.abs(rows.sum(axis=0)).max() < 1e-9 * np.abs(rows).max()


def test_sketched_kernel_converges_to_exact(mace64, reference, small_structures):
    """Kernel error of a Gaussian sketch falls like 1/sqrt(d) (averaged over seeds)."""
    exact = []
    for atoms in small_structures[:2]:
        energy_grad, force_jac = reference.jacobians(mace64, atoms, "readout")
        exact.append(torch.cat([energy_grad[None] / len(atoms), force_jac]).numpy())
    n_parameters = exact[0].shape[1]
    # The map's sketched features are the exact ones times the seeded Omega.
    sketched_map = build_feature_map(
        default_options("joint", group="readout", dim=32, dtype="float64", seed=3)
    )
    omega = sketch_matrix(3, n_parameters, 32).numpy()
    sketched = sketched_map(mace64, small_structures[:2])
    for j in range(2):
        assert relative_error(sketched.block(j), exact[j] @ omega) < 1e-6

    def kernel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sum(_gram(a) * _gram(b)))

    x, y = exact
    k_exact = kernel(x, y)
    errors = []
    for dim in (16, 64, 256, 1024):
        trials = []
        for seed in range(12):
            omega = sketch_matrix(seed, n_parameters, dim).numpy()
            trials.append(abs(kernel(x @ omega, y @ omega) - k_exact) / k_exact)
        errors.append(np.mean(trials))
    assert all(a > b for a, b in itertools.pairwise(errors))
    # 64x more columns: ideal 1/sqrt(d) gives an 8x smaller error.
    assert 3.0 < errors[0] / errors[-1] < 25.0


def test_same_seed_bit_identical_on_any_batch_size(sevennet64, mace64, small_structures):
    structures = [small_structures[0], small_structures[2]]
    for backend, group in ((sevennet64, "readout"), (mace64, "last-interaction")):
        chunks = [
            build_feature_map(
                default_options("joint", group=group, dim=2, dtype="float64", batch_size=b)
            )(backend, structures)
            for b in (1, 3, 3)
        ]
        np.testing.assert_array_equal(chunks[1].values, chunks[2].values)
        np.testing.assert_allclose(chunks[0].values, chunks[1].values, rtol=1e-10, atol=1e-13)
        other_seed = build_feature_map(
            default_options("joint", group=group, dim=2, dtype="float64", seed=1)
        )(backend, structures)
        assert not np.allclose(other_seed.values, chunks[1].values)


def test_float32_repeat_calls_are_bit_identical(small_structures):
    """Same inputs, same features, to the bit, with the default threads (float32 exposes it)."""
    from fntk.models import load_backend

    backend = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
    fmap = build_feature_map(default_options("joint", dim=4))
    first, second = (fmap(backend, small_structures).values for _ in range(2))
    np.testing.assert_array_equal(first, second)


def test_mixed_sizes_from_3_to_200_atoms(mace64):
    water = molecule("H2O")
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((5, 5, 2))
    cell.rattle(0.02, seed=0)
    assert len(cell) == 200
    fmap = joint_map("last-interaction", 3)
    chunk = fmap(mace64, [water, cell, water])
    np.testing.assert_array_equal(chunk.rows_per_structure, [1 + 9, 1 + 600, 1 + 9])
    np.testing.assert_array_equal(chunk.n_atoms, [3, 200, 3])
    alone = fmap(mace64, [water]).values
    scale = np.abs(alone).max()
    np.testing.assert_allclose(chunk.block(0), alone, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(chunk.block(2), alone, rtol=1e-10, atol=1e-12 * scale)
    assert np.all(np.isfinite(chunk.values))


def test_dtype_mismatch_is_refused(sevennet64, small_structures):
    from fntk.errors import CapabilityError

    fmap = build_feature_map(default_options("joint", dtype="float32"))
    with pytest.raises(CapabilityError, match="dtype float32"):
        fmap(sevennet64, small_structures)
