"""Fixtures of the selection tests: random ragged feature chunks (energy row + 3N force rows)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk


def random_chunk(
    rng: np.random.Generator,
    n_structures: int,
    n_features: int,
    *,
    start: int = 0,
    max_atoms: int = 3,
    one_row: bool = False,
) -> FeatureChunk:
    """Structures with 1..max_atoms atoms; blocks of 1 + 3N rows (or one energy row).

    Rows are drawn from a few shared directions plus noise, so the pool has clusters.
    """
    n_atoms = rng.integers(1, max_atoms + 1, n_structures)
    rows = np.ones(n_structures, dtype=np.int64) if one_row else 1 + 3 * n_atoms
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    centres = rng.standard_normal((4, n_features))
    labels = rng.integers(0, 4, offsets[-1])
    scale = rng.uniform(0.2, 2.0, (offsets[-1], 1))
    values = scale * centres[labels] + 0.5 * rng.standard_normal((offsets[-1], n_features))
    kinds = np.full(offsets[-1], FORCE_ROW, dtype=np.int8)
    kinds[offsets[:-1]] = ENERGY_ROW
    return FeatureChunk(
        values=values,
        offsets=offsets,
        source_index=np.arange(start, start + n_structures, dtype=np.int64),
        n_atoms=n_atoms.astype(np.int64),
        row_kind=kinds,
    )


@pytest.fixture
def make_chunk() -> Callable[..., FeatureChunk]:
    """Factory ``make_chunk(seed, n_structures, n_features, **kwargs)`` of random chunks."""

    def make(seed: int, n_structures: int, n_features: int, **kwargs: object) -> FeatureChunk:
        return random_chunk(np.random.default_rng(seed), n_structures, n_features, **kwargs)

    return make
