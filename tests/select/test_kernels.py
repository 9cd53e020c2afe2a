"""The structure kernel is size-consistent, on the shortlist's scale and an explicit d^2 map."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.chunk import FORCE_ROW, FeatureChunk
from fntk.select import SelectOptions, select_structures
from fntk.select.kernels import EXACT_GRAM_DIM, StructureKernel, squared_distances
from fntk.select.precision import PosteriorBlocks


def _blocks(mats: list[np.ndarray], n_atoms: list[int] | None = None) -> PosteriorBlocks:
    offsets = np.concatenate([[0], np.cumsum([len(m) for m in mats])]).astype(np.int64)
    atoms = None if n_atoms is None else np.asarray(n_atoms, dtype=np.int64)
    return PosteriorBlocks(np.concatenate(mats), offsets, atoms)


def _distances(kernel: StructureKernel) -> np.ndarray:
    full = kernel.cross(kernel, np.arange(kernel.n_structures))
    return squared_distances(full, kernel.diag(), kernel.diag())


def _force_block(rng: np.random.Generator, n_atoms: int, basis: np.ndarray) -> np.ndarray:
    """3N force rows of a structure: per-atom environments mixed from shared directions."""
    mix = rng.standard_normal((3 * n_atoms, len(basis)))
    return mix @ basis + 0.1 * rng.standard_normal((3 * n_atoms, basis.shape[1]))


def test_supercell_is_the_same_point_as_its_cell():
    """A 2x supercell repeats every force row; the old ||B B'^T||^2 kernel put it at distance
    k(x, x) from its cell (as far as an unrelated structure), the normalised Gram at zero."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((6, 24))
    cell = _force_block(rng, 32, basis)
    other = _force_block(rng, 32, basis)
    supercell = np.vstack([cell, cell])
    kernel = StructureKernel(_blocks([cell, supercell, other]), "gram")
    sq = _distances(kernel)
    assert sq[0, 1] <= 1e-12 * sq[0, 2]
    assert sq[0, 2] > 0.0
    # per-atom normalisation is size-consistent too; the unnormalised map is not
    per_atom = _distances(
        StructureKernel(_blocks([cell, supercell, other], [32, 64, 32]), "gram", "per-atom")
    )
    assert per_atom[0, 1] <= 1e-12 * per_atom[0, 2]
    total = _distances(StructureKernel(_blocks([cell, supercell, other]), "gram", "total"))
    assert total[0, 1] > 0.5 * total[0, 2]


def test_gram_diagonal_is_the_squared_shortlist_score_scale():
    """tr G(x) is the per-row posterior variance, so k(x, x) <= PV_row(x)^2 with equality for
    rank-one blocks, whatever the row count."""
    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((m, 8)) for m in (1, 7, 31, 97)]
    kernel = StructureKernel(_blocks(mats), "gram")
    per_row_pv = np.array([np.sum(m**2) / len(m) for m in mats])
    assert np.all(kernel.diag() <= per_row_pv**2 * (1 + 1e-12))
    direction = rng.standard_normal(8)
    rank_one = np.outer(rng.standard_normal(40), direction)
    one = StructureKernel(_blocks([rank_one]), "gram")
    assert one.diag()[0] == pytest.approx((np.sum(rank_one**2) / 40) ** 2, rel=1e-12)


def test_one_row_gram_is_the_square_of_the_linear_kernel():
    rng = np.random.default_rng(2)
    rows = [rng.standard_normal((1, 10)) for _ in range(6)]
    gram = StructureKernel(_blocks(rows), "gram")
    linear = StructureKernel(_blocks(rows), "linear")
    everyone = np.arange(6)
    np.testing.assert_allclose(
        gram.cross(gram, everyone), linear.cross(linear, everyone) ** 2, rtol=1e-12
    )


def test_gram_map_is_explicit_and_its_width_does_not_grow_with_atoms():
    rng = np.random.default_rng(3)
    mats = [rng.standard_normal((3 * n, 12)) for n in (2, 100)]
    kernel = StructureKernel(_blocks(mats), "gram")
    assert kernel.vectors.shape == (2, 12 * 13 // 2)
    grams = [m.T @ m / len(m) for m in mats]
    np.testing.assert_allclose(
        kernel.cross(kernel, np.arange(2)),
        [[np.sum(a * b) for b in grams] for a in grams],
        rtol=1e-12,
    )


def test_wide_gram_is_compressed_without_loss_on_low_rank_blocks():
    rng = np.random.default_rng(4)
    d = EXACT_GRAM_DIM + 32
    basis = rng.standard_normal((20, d))
    mats = [rng.standard_normal((9, 20)) @ basis for _ in range(5)]
    kernel = StructureKernel(_blocks(mats), "gram")
    assert kernel.vectors.shape[1] == EXACT_GRAM_DIM * (EXACT_GRAM_DIM + 1) // 2
    grams = [m.T @ m / len(m) for m in mats]
    np.testing.assert_allclose(
        kernel.cross(kernel, np.arange(5)),
        [[np.sum(a * b) for b in grams] for a in grams],
        rtol=1e-9,
    )


def _force_chunk(blocks: list[np.ndarray], start: int) -> FeatureChunk:
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64)
    return FeatureChunk(
        values=np.concatenate(blocks),
        offsets=offsets,
        source_index=np.arange(start, start + len(blocks), dtype=np.int64),
        n_atoms=np.array([len(b) // 3 for b in blocks], dtype=np.int64),
        row_kind=np.full(offsets[-1], FORCE_ROW, dtype=np.int8),
    )


@pytest.mark.parametrize("method", ["lcmd", "maxdist"])
def test_distance_selectors_do_not_chase_supercells(method):
    """Realistic blocks (30-40 atoms, d = 32, default noise): a pool of structures and their
    2x supercells. Each pair is one point, so a batch never holds both members of a pair, and
    the big copies are not preferred (with the old kernel: 8 of 8 picks were supercells)."""
    rng = np.random.default_rng(5)
    basis = rng.standard_normal((10, 32))
    train = _force_chunk(
        [_force_block(rng, int(rng.integers(30, 41)), basis) for _ in range(8)], -8
    )
    cells = [_force_block(rng, int(rng.integers(30, 41)), basis) for _ in range(30)]
    pool = _force_chunk(cells + [np.vstack([c, c]) for c in cells], 0)
    got = select_structures([train], [pool], 8, SelectOptions(method=method), random_state=0)
    pairs = [int(i) % 30 for i in got.indices]
    assert len(set(pairs)) == len(pairs)
    assert sum(int(i) >= 30 for i in got.indices) <= 4


def test_energy_row_share_keeps_joint_supercell_close():
    """Joint blocks: the per-atom energy row is the same for a cell and its supercell, the
    force rows repeat; the supercell stays much closer to its cell than another structure."""
    rng = np.random.default_rng(6)
    basis = rng.standard_normal((6, 16))
    cell = _force_block(rng, 30, basis)
    other = _force_block(rng, 30, basis)
    energy = rng.standard_normal((1, 16))
    mats = [np.vstack([energy, cell]), np.vstack([energy, cell, cell]), np.vstack([energy, other])]
    sq = _distances(StructureKernel(_blocks(mats), "gram"))
    assert sq[0, 1] < 1e-3 * sq[0, 2]
