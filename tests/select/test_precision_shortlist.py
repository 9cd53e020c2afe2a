"""Precision matrix (jitter, errors) and the streamed posterior-variance shortlist."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.chunk import FeatureChunk
from fntk.errors import InputError, NumericalError
from fntk.select import Selector, build_shortlist, factorize_precision, robust_cholesky
from fntk.select.precision import accumulate_gram


def test_robust_cholesky_plain_matrix_needs_no_jitter():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 5))
    factor, jitter = robust_cholesky(x.T @ x)
    assert jitter == 0.0
    np.testing.assert_allclose(factor @ factor.T, x.T @ x, rtol=1e-12)


def test_robust_cholesky_raises_numerical_error_when_jitter_does_not_help():
    with pytest.raises(NumericalError, match=r"failed even with diagonal jitter up to .*8 retries"):
        robust_cholesky(-np.eye(4))
    with pytest.raises(NumericalError, match="non-finite"):
        robust_cholesky(np.full((2, 2), np.nan))


def test_rank_deficient_precision_factorises_with_recorded_jitter(make_chunk):
    # bmdal_reg v3 regression: a singular training gram must still factorise (with jitter).
    base = make_chunk(0, 3, 16, max_atoms=1)  # 12 rows < 16 features: rank-deficient gram
    train = FeatureChunk.concatenate([base, base])
    pool = make_chunk(1, 40, 16, start=100)
    selector = Selector("lcmd", relative_noise=1e-30).fit([train])
    assert selector.precision_.jitter > 0.0
    assert any("jitter" in message for message in selector.precision_.status)
    result = selector.select([pool], 5, random_state=0)
    assert any("jitter" in message for message in result.status)
    assert len(set(result.indices)) == 5


def test_precision_is_independent_of_train_chunking(make_chunk):
    train = make_chunk(2, 30, 8)
    grams = [accumulate_gram(train.split(size), 1.0, 0.5)[0] for size in (1, 7, 30)]
    for gram in grams[1:]:
        np.testing.assert_allclose(gram, grams[0], rtol=1e-12)


def test_relative_noise_follows_the_feature_scale(make_chunk):
    train = make_chunk(3, 20, 8)
    gram, n_structures, n_rows, _ = accumulate_gram([train], 1.0, 1.0)
    precision = factorize_precision(
        gram, n_structures, n_rows, sigma=None, relative_noise=1e-4, jitter_tries=8
    )
    mean_row_norm2 = np.mean(np.sum(train.values**2, axis=1))
    assert precision.sigma == pytest.approx(np.sqrt(1e-4 * mean_row_norm2))


@pytest.mark.parametrize("normalization", ["total", "per-row", "per-atom"])
def test_shortlist_equals_dense_posterior_variance_top_m(make_chunk, normalization):
    train = make_chunk(4, 30, 10)
    pool = make_chunk(5, 200, 10, start=7)
    selector = Selector(relative_noise=1e-3).fit([train])
    precision = selector.precision_
    x = train.values
    a = x.T @ x + precision.sigma**2 * np.eye(10)
    inverse = np.linalg.inv(a)
    pv = np.array(
        [
            precision.sigma**2 * np.trace(pool.block(j) @ inverse @ pool.block(j).T)
            for j in range(200)
        ]
    )
    pv = (
        pv
        / {"total": 1, "per-row": pool.rows_per_structure, "per-atom": pool.n_atoms}[normalization]
    )
    expected = pool.source_index[np.argsort(-pv)[:25]]
    for chunk_size in (1, 7, 64, 200):
        shortlist = build_shortlist(
            pool.split(chunk_size), precision, size=25, normalization=normalization
        )
        assert list(shortlist.source_index) == list(expected)
        np.testing.assert_allclose(shortlist.posterior_variance, np.sort(pv)[::-1][:25], rtol=1e-9)
        assert shortlist.n_pool == 200
        assert shortlist.chunk.n_rows == pool.subset(np.argsort(-pv)[:25]).n_rows


def test_shortlist_ties_break_by_source_index_whatever_the_chunking(make_chunk):
    train = make_chunk(6, 20, 8)
    base = make_chunk(7, 30, 8)
    # the same 30 blocks three times, source indices interleaved so copies land in other chunks
    copies = [
        FeatureChunk(
            base.values, base.offsets, 3 * base.source_index + k, base.n_atoms, base.row_kind
        )
        for k in range(3)
    ]
    pool = FeatureChunk.concatenate(copies)
    precision = Selector().fit([train]).precision_
    lists = [
        list(build_shortlist(pool.split(size), precision, size=40).source_index)
        for size in (1, 7, 64, 90)
    ]
    assert all(order == lists[0] for order in lists)
    # copies tie exactly, so the kept ones come as consecutive source indices 3j, 3j+1, 3j+2
    assert lists[0][:3] == [lists[0][0], lists[0][0] + 1, lists[0][0] + 2]


def test_pool_errors_name_the_structure(make_chunk):
    train = make_chunk(8, 10, 6)
    pool = make_chunk(9, 10, 6, start=40)
    bad = pool.values.copy()
    bad[pool.offsets[3]] = np.nan
    nan_pool = FeatureChunk(bad, pool.offsets, pool.source_index, pool.n_atoms, pool.row_kind)
    selector = Selector().fit([train])
    with pytest.raises(InputError, match="source index 43 has non-finite"):
        selector.select([nan_pool], 2)
    with pytest.raises(InputError, match="has 7 features, expected 6"):
        selector.select([make_chunk(9, 10, 7)], 2)
    no_atoms = pool.n_atoms.copy()
    no_atoms[5] = 0
    empty = FeatureChunk(pool.values, pool.offsets, pool.source_index, no_atoms, pool.row_kind)
    with pytest.raises(InputError, match="source index 45 has no atoms"):
        Selector(normalization="per-atom").fit([train]).select([empty], 2)
    twice = FeatureChunk.concatenate([pool, pool])
    with pytest.raises(InputError, match=r"source index \d+ occurs more than once"):
        selector.select([twice], 2)
