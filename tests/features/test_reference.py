"""The built-in reference sets of the PCA basis: seeded, nested, and covering structure sizes."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.features.reference import CLUSTER_SIZE_BINS, builtin_reference


def _same(first: list, second: list) -> bool:
    return len(first) == len(second) and all(
        np.array_equal(a.numbers, b.numbers)
        and np.array_equal(a.positions, b.positions)
        and np.array_equal(a.cell.array, b.cell.array)
        and np.array_equal(a.pbc, b.pbc)
        for a, b in zip(first, second)
    )


def test_same_seed_same_structures_and_v2_extends_v1():
    v1, v2 = builtin_reference(0), builtin_reference(0, "builtin-v2")
    assert _same(builtin_reference(0, "builtin-v2"), v2)
    assert _same(v2[: len(v1)], v1)  # v1 stays what it was: stores made with it stay valid
    assert not _same(builtin_reference(1, "builtin-v2"), v2)


def test_v2_covers_every_size_bin_and_has_no_overlapping_atoms():
    v1, v2 = builtin_reference(0), builtin_reference(0, "builtin-v2")
    added = v2[len(v1) :]
    clusters = [len(a) for a in added if not a.pbc.any()]
    assert max(len(a) for a in v1) <= 14
    for low, high in CLUSTER_SIZE_BINS:
        assert any(low <= n <= high + 4 for n in clusters)  # + an adsorbate of up to 2 atoms
    assert any(a.pbc[:2].all() and not a.pbc[2] for a in added)  # slabs
    for atoms in added:
        distances = atoms.get_all_distances(mic=True)
        np.fill_diagonal(distances, np.inf)
        assert distances.min() > 0.8, atoms.get_chemical_formula()


def test_unknown_reference_set_lists_the_valid_ones():
    with pytest.raises(ValueError, match="builtin-v1, builtin-v2"):
        builtin_reference(0, "builtin-v9")
