"""The embedding map: mean-pooled node features, optionally per element."""

from __future__ import annotations

import numpy as np
import torch

from fntk.features import ENERGY_ROW, build_feature_map, default_options


def test_mean_and_per_element_means(mace64, small_structures):
    fmap = build_feature_map(
        default_options("embedding", dtype="float64", per_element=True, elements=(1, 8, 29))
    )
    chunk = fmap(mace64, small_structures, source_index=[3, 4, 5])
    width = mace64.n_node_features
    assert chunk.n_features == fmap.n_features(mace64) == 4 * width
    assert np.all(chunk.row_kind == ENERGY_ROW) and chunk.n_rows == 3
    for j, atoms in enumerate(small_structures):
        with torch.no_grad():
            hidden = mace64(mace64.build_graph([atoms])).node_features.numpy()
        numbers = atoms.get_atomic_numbers()
        row = chunk.block(j)[0]
        np.testing.assert_allclose(row[:width], hidden.mean(0), rtol=1e-10)
        for b, z in enumerate((1, 8, 29), start=1):
            part = row[b * width : (b + 1) * width]
            expected = hidden[numbers == z].mean(0) if np.any(numbers == z) else 0.0
            np.testing.assert_allclose(part, expected, rtol=1e-10, atol=1e-14)


def test_default_is_the_mean_row_and_batch_size_does_not_matter(sevennet64, small_structures):
    rows = [
        build_feature_map(default_options("embedding", dtype="float64", batch_size=b))(
            sevennet64, small_structures
        ).values
        for b in (1, 3)
    ]
    assert rows[0].shape == (3, 128)
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-10, atol=1e-13)


def test_per_element_default_uses_every_model_element(mace64):
    fmap = build_feature_map(default_options("embedding", dtype="float64", per_element=True))
    assert fmap.n_features(mace64) == mace64.n_node_features * (1 + len(mace64.species))


def test_batches_respect_structure_and_atom_limits():
    from fntk.features.assembly import iter_batches

    structures = [_atoms(n) for n in (5, 5, 30, 5, 5, 5)]
    batches = [[len(a) for a in b] for b in iter_batches(structures, 2, 12)]
    assert batches == [[5, 5], [30], [5, 5], [5]]
    assert [len(b) for b in iter_batches(structures, 8, 1000)] == [6]


def _atoms(n: int):
    from ase import Atoms

    return Atoms("H" * n, positions=[(2.0 * i, 0.0, 0.0) for i in range(n)])
