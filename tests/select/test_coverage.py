"""The coverage selector covers where the pool is, not where its outliers are.

A pool of realistic blocks (30-atom structures, 91 rows) in which most structures share a few
directions and a handful are large-magnitude outliers in directions of their own: the
variance- and distance-maximising selectors (lcmd, maxdet, bait) take all six outliers
first, coverage takes none and splits its picks by the crowds' sizes.
"""

from __future__ import annotations

import numpy as np

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.select import Selector

N_ATOMS = 30
D = 24


def _structure(rng: np.random.Generator, direction: np.ndarray, scale: float) -> np.ndarray:
    """91 rows along the structure's own direction: its crowd's, moved by 40% at random."""
    rows = 1 + 3 * N_ATOMS
    own = direction + 0.4 * np.linalg.norm(direction) / np.sqrt(D) * rng.normal(size=D)
    weights = rng.normal(size=(rows, 1))
    return scale * (weights * own + 0.05 * rng.normal(size=(rows, D)))


def _pool(rng: np.random.Generator, sizes: dict[str, int], start: int) -> tuple[FeatureChunk, list]:
    directions = {name: rng.normal(size=D) for name in sizes}
    blocks, labels = [], []
    for name, count in sizes.items():
        scale = 10.0 if name.startswith("outlier") else 1.0
        for _ in range(count):
            blocks.append(_structure(rng, directions[name], scale))
            labels.append(name)
    order = rng.permutation(len(blocks))
    blocks = [blocks[i] for i in order]
    labels = [labels[i] for i in order]
    values = np.concatenate(blocks)
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64)
    kinds = np.full(len(values), FORCE_ROW, dtype=np.int8)
    kinds[offsets[:-1]] = ENERGY_ROW
    chunk = FeatureChunk(
        values=values,
        offsets=offsets,
        source_index=np.arange(start, start + len(blocks), dtype=np.int64),
        n_atoms=np.full(len(blocks), N_ATOMS, dtype=np.int64),
        row_kind=kinds,
    )
    return chunk, labels


def test_coverage_picks_the_crowd_and_lcmd_the_outliers():
    rng = np.random.default_rng(0)
    sizes = {"a": 120, "b": 60, **{f"outlier{k}": 1 for k in range(6)}}
    pool, labels = _pool(rng, sizes, start=0)
    train = FeatureChunk.concatenate([_pool(rng, {"t": 3}, start=-3)[0]])
    label_of = dict(zip(pool.source_index.tolist(), labels))

    coverage = Selector("coverage").fit([train]).select(pool.split(17), 8, random_state=0)
    picked = [label_of[int(i)] for i in coverage.indices]
    assert not any(p.startswith("outlier") for p in picked)
    assert picked.count("a") > picked.count("b") > 0  # 120 vs 60 structures

    for method in ("lcmd", "maxdet", "bait"):
        result = Selector(method).fit([train]).select([pool], 8, random_state=0)
        first = [label_of[int(i)] for i in result.indices[:6]]
        assert all(p.startswith("outlier") for p in first), method
