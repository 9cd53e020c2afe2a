"""The hidden-space basis of the linear-readout path is a function of the model and seed alone.

SevenNet-0's readout map M has a 64-fold degenerate eigenvalue of M^T M, so any basis read off
an eigendecomposition is arbitrary inside that eigenspace: it changed with the model dtype and
the thread count, and with it the features and the picks (issue 15, defect 1).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from ase.build import molecule

from fntk.features import build_feature_map, default_options, sketch_matrix
from fntk.features.ntk import hidden_basis
from fntk.features.readout import LinearReadout, linear_readout
from fntk.select import Selector

WIDTHS = (12, 128)  # sketched (d < F = 128) and exact


@pytest.fixture(scope="module")
def sevennet32():
    from fntk.models import load_backend

    return load_backend("sevennet-0", device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def readout64(sevennet64) -> LinearReadout:
    readout = linear_readout(sevennet64, "readout")
    assert readout is not None
    return readout


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _rotate_degenerate_eigenvectors(eigh):
    """A valid ``eigh`` that returns another orthonormal basis of each degenerate eigenspace."""

    def rotated(matrix: torch.Tensor):
        values, vectors = eigh(matrix)
        vectors = vectors.clone()
        generator = torch.Generator().manual_seed(1)
        start = 0
        while start < len(values):
            stop = start + 1
            while stop < len(values) and values[stop] - values[start] <= 1e-9 * values.abs().max():
                stop += 1
            if stop - start > 1:
                size = stop - start
                noise = torch.randn(size, size, generator=generator, dtype=torch.float64)
                q, _ = torch.linalg.qr(noise)
                vectors[:, start:stop] = vectors[:, start:stop] @ q.to(vectors.dtype)
            start = stop
        return values, vectors

    return rotated


def test_sevennet_readout_has_a_degenerate_eigenspace(readout64):
    """The premise of the tests below: an eigenbasis of M^T M is not unique."""
    m = readout64.matrix
    values = torch.linalg.eigvalsh(m.T @ m)
    assert int((values - values[0] <= 1e-9 * values[-1]).sum()) >= 32


@pytest.mark.parametrize("dim", WIDTHS)
def test_basis_does_not_depend_on_the_eigenvectors_eigh_returns(monkeypatch, readout64, dim):
    options = default_options("joint", dim=dim, basis="sketch", dtype="float64")
    expected = hidden_basis(readout64, options)
    monkeypatch.setattr(torch.linalg, "eigh", _rotate_degenerate_eigenvectors(torch.linalg.eigh))
    m = readout64.matrix
    values, vectors = torch.linalg.eigh(m.T @ m)  # still an eigendecomposition of M^T M
    torch.testing.assert_close((vectors * values) @ vectors.T, m.T @ m)
    torch.testing.assert_close(hidden_basis(readout64, options), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dim", WIDTHS)
def test_basis_squares_to_the_readout_kernel(readout64, dim):
    """``B B^T = M^T M`` when exact; an unbiased N(0, 1/d) sketch of it otherwise."""
    m = readout64.matrix
    basis = hidden_basis(
        readout64, default_options("joint", dim=dim, basis="sketch", dtype="float64")
    )
    if dim >= readout64.n_hidden:
        torch.testing.assert_close(basis, basis.T)
        torch.testing.assert_close(basis @ basis.T, m.T @ m, rtol=1e-10, atol=1e-14)
    else:
        # The parameter path's sketch, so both paths give the same features for a seed.
        omega = sketch_matrix(0, m.shape[0], dim)
        torch.testing.assert_close(basis, m.T @ omega, rtol=1e-12, atol=1e-15)
        # Ten seeds side by side are a width-120 sketch: relative error ~ sqrt(5 / 120).
        wide = torch.cat(
            [
                hidden_basis(
                    readout64,
                    default_options("joint", dim=dim, seed=s, basis="sketch", dtype="float64"),
                )
                for s in range(10)
            ],
            dim=1,
        )
        assert relative(wide @ wide.T / 10, m.T @ m) < 0.35


@pytest.mark.parametrize("dim", WIDTHS)
def test_float32_and_float64_models_give_the_same_basis(sevennet32, readout64, dim):
    readout32 = linear_readout(sevennet32, "readout")
    b32 = hidden_basis(readout32, default_options("joint", dim=dim, basis="sketch"))
    b64 = hidden_basis(
        readout64, default_options("joint", dim=dim, basis="sketch", dtype="float64")
    )
    assert b32.dtype == torch.float32 and b64.dtype == torch.float64
    assert relative(b32, b64) < 1e-5
    assert relative(b32 @ b32.T, b64 @ b64.T) < 1e-5


_THREADS_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(int(sys.argv[1]))
    from fntk.features import default_options
    from fntk.features.ntk import hidden_basis
    from fntk.features.readout import LinearReadout
    matrix = torch.load(sys.argv[2], weights_only=True)
    readout = LinearReadout(matrix, torch.ones(1), torch.zeros(119))
    bases = [
        hidden_basis(readout, default_options("joint", dim=d, basis="sketch", dtype="float64"))
        for d in (12, 128)
    ]
    torch.save(bases, sys.argv[3])
    """
)


def test_one_and_two_threads_give_the_same_basis(tmp_path, readout64):
    """In fresh processes, as a user's OMP_NUM_THREADS would set it (LAPACK reads it)."""
    import os

    matrix = tmp_path / "matrix.pt"
    torch.save(readout64.matrix, matrix)
    results = []
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        out = tmp_path / f"bases{threads}.pt"
        subprocess.run(
            [sys.executable, "-c", _THREADS_SCRIPT, str(threads), str(matrix), str(out)],
            check=True,
            env=env,
            timeout=300,
        )
        results.append(torch.load(out, weights_only=True))
    for one, two in zip(*results):
        torch.testing.assert_close(one, two, rtol=1e-12, atol=1e-15)


def _pool() -> tuple[list, list]:
    names = ["H2O", "NH3", "CH4", "CH3OH", "C2H4", "C2H6", "HCOOH", "CH3CHO", "CH3CN", "CH3CH2OH"]
    structures = []
    for k in range(23):
        atoms = molecule(names[k % len(names)])
        atoms.rattle(0.05 + 0.1 * (k // len(names)), seed=k)
        atoms.center(vacuum=4.0)
        structures.append(atoms)
    return structures[:3], structures[3:]


def _features_and_picks(backend, dtype: str, batch_size: int):
    options = default_options("joint", dtype=dtype, batch_size=batch_size)
    fmap = build_feature_map(options)
    train, pool = _pool()
    train_chunk = fmap(backend, train, -1 - np.arange(len(train)))
    pool_chunk = fmap(backend, pool, np.arange(len(pool)))
    result = Selector("lcmd").fit([train_chunk]).select([pool_chunk], n=5, random_state=0)
    return pool_chunk, [int(i) for i in result.indices]


def test_same_kernel_and_picks_for_dtype_and_batch_size(sevennet32, sevennet64):
    """Default joint map (sketched): float32 vs float64 model, batch size 1 vs 8."""
    reference, picks = _features_and_picks(sevennet64, "float64", 8)
    for backend, dtype, batch_size in ((sevennet32, "float32", 8), (sevennet32, "float32", 1)):
        chunk, other_picks = _features_and_picks(backend, dtype, batch_size)
        for j in range(chunk.n_structures):
            phi, expected = chunk.block(j).astype(np.float64), reference.block(j)
            np.testing.assert_allclose(
                phi @ phi.T, expected @ expected.T, rtol=0, atol=1e-4 * np.abs(expected).max() ** 2
            )
        assert other_picks == picks


def _structure_kernel(chunk) -> np.ndarray:
    grams = [chunk.block(j).astype(np.float64) for j in range(chunk.n_structures)]
    flat = np.stack([b.T @ b for b in grams]).reshape(len(grams), -1)
    return flat @ flat.T


def test_pca_basis_is_principal_directions_completed_by_a_sketch(sevennet32):
    """B = R [V_p, T_q]: V_p orthonormal, T_q orthogonal to it, reproducible to the bit."""
    from fntk.features.basis import n_principal, readout_root

    readout = linear_readout(sevennet32, "readout")
    options = default_options("joint", dim=12, basis="pca")
    basis = hidden_basis(readout, options, sevennet32).double()
    directions = torch.linalg.solve(readout_root(readout), basis)
    p = n_principal(12)
    assert 0 < p < 12
    principal, complement = directions[:, :p], directions[:, p:]
    torch.testing.assert_close(principal.T @ principal, torch.eye(p, dtype=torch.float64))
    assert float((principal.T @ complement).abs().max()) < 1e-6
    assert torch.equal(hidden_basis(readout, options, sevennet32).double(), basis)
    with pytest.raises(ValueError, match="pass its backend"):
        hidden_basis(readout, options)


def test_pca_map_at_width_8_is_close_to_the_exact_kernel(sevennet32):
    """The joint map with a PCA basis at d = 8 against the exact map (d = F), on held-out
    molecules: well under the 0.10 structure-kernel error target, far below a random sketch's
    of the same width."""
    _, pool = _pool()
    exact = build_feature_map(default_options("joint", dim=128))(sevennet32, pool)
    k_exact = _structure_kernel(exact)
    errors = {}
    for basis in ("pca", "sketch"):
        chunk = build_feature_map(default_options("joint", dim=8, basis=basis))(sevennet32, pool)
        errors[basis] = np.linalg.norm(_structure_kernel(chunk) - k_exact) / np.linalg.norm(k_exact)
    assert errors["pca"] < 0.10 and errors["pca"] < errors["sketch"] / 4


def test_reference_moments_are_kept_on_disk_and_reused(sevennet32, tmp_path, monkeypatch):
    """A new process (empty memory cache) reads the moments file instead of recomputing; the
    Gram of two joint lambdas comes from one pair of moments; a corrupt file is recomputed."""
    from fntk.features import basis as basis_module

    monkeypatch.setenv(basis_module.CACHE_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setattr(basis_module, "_MOMENTS_CACHE", type(basis_module._MOMENTS_CACHE)())
    readout = linear_readout(sevennet32, "readout")
    # builtin-v1: the shipped moments are builtin-v2's (the default), which are never written.
    pca = {"basis": "pca", "reference": "builtin-v1"}
    options = default_options("joint", dim=12, force_weight=0.5, **pca)
    energy, force = basis_module.reference_moments(sevennet32, readout, options)
    (stored,) = (tmp_path / "reference-moments").iterdir()
    assert stored.stat().st_mode & 0o777 == 0o644
    computed = basis_module._compute_moments

    def refuse(*args):  # the file must serve the second call
        raise AssertionError("recomputed although the moments are on disk")

    monkeypatch.setattr(basis_module, "_compute_moments", refuse)
    basis_module._MOMENTS_CACHE.clear()
    other = default_options("joint", dim=16, force_weight=2.0, **pca)
    gram = basis_module.reference_gram(sevennet32, readout, other)
    torch.testing.assert_close(gram, energy + 4.0 * force, rtol=1e-12, atol=0.0)
    # Another seed (another reference set) is another key: it must be computed, not read.
    with pytest.raises(AssertionError, match="recomputed"):
        basis_module.reference_moments(sevennet32, readout, default_options("joint", seed=1, **pca))
    monkeypatch.setattr(basis_module, "_compute_moments", computed)
    stored.write_bytes(b"not an npz file")
    basis_module._MOMENTS_CACHE.clear()
    again, _ = basis_module.reference_moments(sevennet32, readout, options)
    assert torch.equal(again, energy)


def test_the_default_maps_moments_are_shipped(sevennet32):
    """A first run of the default map on SevenNet-0 finds its reference moments in the package
    (a changed default, reference set or weights must ship new ones)."""
    from fntk.features.basis import SHIPPED_MOMENTS, moments_key

    key = moments_key(sevennet32, default_options("joint"))
    assert (SHIPPED_MOMENTS / f"{key}.npz").is_file(), (
        "the default joint map's reference moments are not shipped: run "
        "scripts/ship_reference_moments.py"
    )


@pytest.mark.slow
def test_shipped_moments_equal_a_fresh_computation(sevennet32):
    from fntk.features.basis import SHIPPED_MOMENTS, _compute_moments, moments_key

    options = default_options("joint")
    with np.load(SHIPPED_MOMENTS / f"{moments_key(sevennet32, options)}.npz") as shipped:
        energy, force = _compute_moments(sevennet32, linear_readout(sevennet32, "readout"), options)
        assert force is not None
        for name, computed in (("energy", energy), ("force", force)):
            np.testing.assert_allclose(
                shipped[name], computed.numpy(), rtol=1e-5, atol=1e-7 * float(computed.abs().max())
            )


def test_an_empty_cache_variable_turns_the_disk_cache_off(monkeypatch, tmp_path):
    from fntk.features.basis import CACHE_DIR_VARIABLE, reference_cache_dir

    monkeypatch.setenv(CACHE_DIR_VARIABLE, "")
    assert reference_cache_dir() is None
    monkeypatch.delenv(CACHE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert reference_cache_dir() == tmp_path / "fntk"


def test_store_refuses_features_of_another_basis(tmp_path):
    from fntk.errors import InputError
    from fntk.features import FeatureStore

    options = default_options("joint", basis="pca")
    FeatureStore.create(tmp_path, options, "sevennet-0", chunk_size=8, n_features=8)
    with pytest.raises(InputError, match="option basis: stored 'pca', asked for 'sketch'"):
        FeatureStore.open(tmp_path, options=default_options("joint", basis="sketch"))


def test_store_refuses_features_of_another_reference_set(tmp_path):
    from fntk.errors import InputError
    from fntk.features import FeatureStore

    options = default_options("joint", basis="pca", reference="builtin-v1")
    FeatureStore.create(tmp_path, options, "sevennet-0", chunk_size=8, n_features=8)
    with pytest.raises(InputError, match="option reference"):
        FeatureStore.open(tmp_path, options=default_options("joint", basis="pca"))
