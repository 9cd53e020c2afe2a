"""Covering selectors on wider candidates (coverage-density) and with target structures.

Each must pick exactly what a brute-force dense reference of its definition picks (full
distance matrix between unit posterior Grams, plain greedy), for any chunking of the pool and
of the targets, and reproducibly for a seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from fntk.chunk import FeatureChunk
from fntk.select import Selector
from fntk.select.shortlist import uniform_keys

SIGMA = 0.5


def _unit_grams(blocks: list[np.ndarray], cholesky: np.ndarray) -> np.ndarray:
    """Unit-trace posterior Grams G / tr G of each block, flattened (Frobenius geometry)."""
    out = []
    for phi in blocks:
        b = SIGMA * np.linalg.solve(cholesky, phi.T).T
        g = b.T @ b
        out.append((g / np.trace(g)).ravel())
    return np.array(out)


def _reference(train, pool, n, size, seed, *, variance, weighted, target=None):
    """Dense reference: candidate and cover sets from their definitions, then greedy k-median."""
    d = pool.n_features
    gram = sum(
        (train.block(j).T @ train.block(j) for j in range(train.n_structures)), np.zeros((d, d))
    )
    cholesky = np.linalg.cholesky(SIGMA**2 * np.eye(d) + gram)
    blocks = [pool.block(j) for j in range(pool.n_structures)]
    grams = _unit_grams(blocks, cholesky)
    pv = np.array([np.sum((SIGMA * np.linalg.solve(cholesky, b.T)) ** 2) / len(b) for b in blocks])
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    key = int(rng.integers(2**62))
    sample = set(np.argsort(-uniform_keys(pool.source_index, key))[:size].tolist())
    candidates = set(sample)
    if variance:
        candidates |= set(np.argsort(-pv)[:size].tolist())
    if target is None:
        cover_grams = grams[sorted(sample)]
        cover_pv = pv[sorted(sample)]
    else:
        tkey = int(rng.integers(2**62))
        chosen = sorted(np.argsort(-uniform_keys(target.source_index, tkey))[:size].tolist())
        tblocks = [target.block(j) for j in chosen]
        cover_grams = _unit_grams(tblocks, cholesky)
        cover_pv = np.array(
            [np.sum((SIGMA * np.linalg.solve(cholesky, b.T)) ** 2) / len(b) for b in tblocks]
        )
        near = np.array([np.min(np.sum((cover_grams - g) ** 2, axis=1)) for g in grams])
        candidates |= set(np.argsort(near)[:size].tolist())
    weight = cover_pv if weighted else np.ones(len(cover_grams))
    train_grams = _unit_grams([train.block(j) for j in range(train.n_structures)], cholesky)
    dist = lambda a, b: np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)  # noqa: E731
    nearest = dist(cover_grams, train_grams).min(axis=1)
    cand = sorted(candidates)
    to_cand = dist(cover_grams, grams[cand])  # (n_cover, n_cand)
    picks = []
    for _ in range(n):
        gains = (weight[:, None] * np.maximum(nearest[:, None] - to_cand, 0.0)).sum(axis=0)
        gains[[cand.index(p) for p in picks]] = -1.0
        best = int(np.argmax(gains))
        picks.append(cand[best])
        nearest = np.minimum(nearest, to_cand[:, best])
    return [int(pool.source_index[p]) for p in picks]


def test_wider_candidates_match_the_dense_reference(make_chunk):
    train = make_chunk(1, 4, 5, start=-4)
    pool = make_chunk(2, 40, 5)
    expected = _reference(train, pool, 5, 8, seed=3, variance=True, weighted=True)
    for chunk_size in (1, 7, 40):
        selector = Selector("coverage-density", sigma=SIGMA, shortlist_size=8).fit([train])
        result = selector.select(pool.split(chunk_size), 5, random_state=3)
        assert result.indices.tolist() == expected, chunk_size


@pytest.mark.parametrize("method", ["coverage", "coverage-density"])
def test_targets_match_the_dense_reference(make_chunk, method):
    train = make_chunk(1, 4, 5, start=-4)
    pool = make_chunk(2, 40, 5)
    target = make_chunk(9, 15, 5)
    expected = _reference(
        train,
        pool,
        4,
        6,
        seed=5,
        variance=method != "coverage",
        weighted=method == "coverage-density",
        target=target,
    )
    for pool_chunk, target_chunk in ((1, 2), (7, 15), (40, 4)):
        selector = Selector(method, sigma=SIGMA, shortlist_size=6).fit([train])
        result = selector.select(
            pool.split(pool_chunk), 4, random_state=5, target_chunks=target.split(target_chunk)
        )
        assert result.indices.tolist() == expected, (pool_chunk, target_chunk)


def test_variance_candidates_reach_beyond_the_uniform_sample(make_chunk):
    """With M < pool the top-M by posterior variance are candidates too (the shortlist
    matters): coverage-density's candidate list holds them, coverage's does not."""
    train = make_chunk(1, 4, 5, start=-4)
    pool = make_chunk(2, 60, 5)
    plain = Selector("coverage", shortlist_size=6).fit([train]).select([pool], 3, random_state=0)
    wide = (
        Selector("coverage-density", shortlist_size=6)
        .fit([train])
        .select([pool], 3, random_state=0)
    )
    by_pv = Selector("maxdiag", shortlist_size=6).fit([train]).select([pool], 3, random_state=0)
    top = set(by_pv.shortlist.source_index.tolist())
    assert top <= set(wide.shortlist.source_index.tolist())
    assert not top <= set(plain.shortlist.source_index.tolist())
    assert len(wide.shortlist.source_index) > 6


def test_seeded_runs_repeat(make_chunk):
    train = make_chunk(1, 4, 5, start=-4)
    pool = make_chunk(2, 60, 5)
    target = make_chunk(9, 20, 5)

    def run(seed: int) -> list[int]:
        selector = Selector("coverage-density", shortlist_size=10).fit([train])
        result = selector.select([pool], 5, random_state=seed, target_chunks=[target])
        return result.indices.tolist()

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_the_target_changes_what_is_covered(make_chunk):
    """A target far from most of the pool moves coverage's picks toward the pool structures
    nearest to it; without a target the picks are today's, and the pool sample stays the
    same with one (the target key is drawn after the pool's)."""
    train = make_chunk(1, 4, 5, start=-4)
    pool = make_chunk(2, 60, 5)
    plain = Selector("coverage", shortlist_size=10).fit([train]).select([pool], 4, random_state=2)
    target = pool.subset(np.arange(50, 60))  # ten pool structures stand for the target
    aimed = (
        Selector("coverage", shortlist_size=10)
        .fit([train])
        .select([pool], 4, random_state=2, target_chunks=[target])
    )
    assert aimed.indices.tolist() != plain.indices.tolist()
    assert set(aimed.indices.tolist()) <= set(range(50, 60)) | set(
        plain.shortlist.source_index.tolist()
    )
    assert set(plain.shortlist.source_index.tolist()) <= set(aimed.shortlist.source_index.tolist())
    # the nearest pool structures to a target that is in the pool are the target itself
    assert set(range(50, 60)) <= set(aimed.shortlist.source_index.tolist())


def test_targets_need_a_covering_selector(make_chunk):
    pool = make_chunk(2, 20, 5)
    with pytest.raises(ValueError, match="covering selector"):
        Selector("lcmd").fit([]).select([pool], 2, random_state=0, target_chunks=[pool])


def test_coverage_without_cover_set_is_unchanged(make_chunk):
    """Plain coverage keeps covering its own uniform sample (cover set = candidates)."""
    train = make_chunk(1, 4, 5, start=-4)
    pool = make_chunk(2, 40, 5)
    result = Selector("coverage", sigma=SIGMA, shortlist_size=40).fit([train])
    picks = result.select([pool], 5, random_state=3).indices.tolist()
    expected = _reference(train, pool, 5, 40, seed=3, variance=False, weighted=False)
    assert picks == expected


def test_empty_target_set_is_an_error(make_chunk):
    pool = make_chunk(2, 20, 5)
    empty = FeatureChunk.concatenate([pool.subset([])])
    with pytest.raises(ValueError, match="target set is empty"):
        Selector("coverage").fit([]).select([pool], 2, random_state=0, target_chunks=[empty])
