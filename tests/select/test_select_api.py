"""Selector API: options, registry, edge cases and the bmdal_reg v3 regressions."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from fntk.chunk import FeatureChunk
from fntk.errors import CapabilityError
from fntk.select import SelectOptions, Selector, select_structures, selectors
from fntk.select.kernels import StructureKernel
from fntk.select.precision import PosteriorBlocks

SELECTOR_NAMES = selectors().names()


def test_registry_is_the_one_source_of_selector_names():
    assert set(SELECTOR_NAMES) == {
        "coverage",
        "coverage-density",
        "lcmd",
        "maxdiag",
        "maxdet",
        "bait",
        "maxdist",
        "kmeans++",
        "random",
    }
    for name in SELECTOR_NAMES:
        assert SelectOptions(method=name).method == name
        assert selectors().entry(name).help
    with pytest.raises(ValueError, match="unknown selector 'nope'"):
        SelectOptions(method="nope")


@pytest.mark.parametrize("name", SELECTOR_NAMES)
def test_every_selector_builds_from_defaults_and_round_trips_through_yaml(name):
    options = SelectOptions(method=name)
    assert SelectOptions(**yaml.safe_load(yaml.safe_dump(options.model_dump()))) == options
    assert Selector.from_options(options).get_params()["method"] == name


def test_unknown_names_and_bad_options_give_clear_errors(make_chunk):
    expected = r"unknown selector 'lcdm'; choose one of coverage, coverage-density, maxdist, lcmd"
    with pytest.raises(ValueError, match=expected):
        selectors().get("lcdm")
    with pytest.raises(ValueError, match="unknown selector 'lcdm'"):
        Selector("lcdm")
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        SelectOptions(shortlist=3)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        Selector().set_params(sigm=1.0)
    train = make_chunk(0, 10, 6)
    with pytest.raises(ValueError, match="shortlist_size=5 is smaller than the batch size n=6"):
        Selector(shortlist_size=5).fit([train]).select([make_chunk(1, 20, 6)], 6)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        Selector().fit([train]).select([make_chunk(1, 20, 6)], -1)
    with pytest.raises(RuntimeError, match="call fit"):
        Selector().select([], 1)
    with pytest.raises(CapabilityError, match="kernel='linear' needs one-row blocks"):
        Selector(kernel="linear").fit([train]).select([make_chunk(1, 20, 6)], 3)


@pytest.mark.parametrize("method", SELECTOR_NAMES)
def test_budget_zero_and_budget_above_pool(make_chunk, method):
    train = make_chunk(2, 10, 6)
    pool = make_chunk(3, 12, 6, start=20)
    empty = Selector(method).fit([train]).select(pool.split(5), 0)
    assert empty.indices.shape == (0,) and "n=0" in empty.status[0]
    everything = Selector(method).fit([train]).select(pool.split(5), 50, random_state=0)
    assert sorted(everything.indices) == list(range(20, 32))
    assert any("exceeds the pool size 12" in message for message in everything.status)


@pytest.mark.parametrize("method", SELECTOR_NAMES)
def test_empty_training_set_runs_in_p_mode(make_chunk, method):
    pool = make_chunk(4, 40, 8)
    for train in ([], [make_chunk(5, 0, 8)]):
        result = Selector(method).fit(train).select(pool.split(9), 6, random_state=0)
        assert result.mode == "p"
        assert len(set(result.indices)) == 6
        assert any("empty training set: P mode" in message for message in result.status)


def test_duplicated_structures_are_not_picked_twice_before_new_ones(make_chunk):
    train = make_chunk(6, 15, 8)
    base = make_chunk(7, 30, 8)
    copy = FeatureChunk(
        base.values, base.offsets, base.source_index + 30, base.n_atoms, base.row_kind
    )
    pool = FeatureChunk.concatenate([base, copy])
    for method in ("lcmd", "maxdist", "kmeans++"):
        picks = Selector(method).fit([train]).select(pool.split(7), 25, random_state=0).indices
        assert len(set(picks % 30)) == 25, method
    # maxdet: a repeated label only halves the noise, so while unexplored directions remain
    # (one-row features, 15 + 10 < 32 features) an exact copy is never worth picking
    train = make_chunk(6, 15, 32, one_row=True)
    base = make_chunk(7, 30, 32, one_row=True)
    copy = FeatureChunk(
        base.values, base.offsets, base.source_index + 30, base.n_atoms, base.row_kind
    )
    pool = FeatureChunk.concatenate([base, copy])
    picks = Selector("maxdet").fit([train]).select(pool.split(7), 10).indices
    assert len(set(picks % 30)) == 10


def test_all_zero_block_is_harmless_and_least_informative(make_chunk):
    train = make_chunk(8, 15, 8)
    pool = make_chunk(9, 20, 8)
    values = pool.values.copy()
    values[pool.offsets[4] : pool.offsets[5]] = 0.0
    pool = FeatureChunk(values, pool.offsets, pool.source_index, pool.n_atoms, pool.row_kind)
    for method in ("maxdiag", "maxdet", "bait", "maxdist", "lcmd", "coverage"):
        result = Selector(method).fit([train]).select(pool.split(6), 20, random_state=0)
        assert sorted(result.indices) == list(range(20))
        if method in ("maxdiag", "maxdet", "bait"):
            assert result.indices[-1] == 4 and result.scores[-1] == 0.0, method
    shortlist = Selector("lcmd").fit([train]).select([pool], 3)  # by posterior variance
    assert shortlist.shortlist.posterior_variance[-1] == 0.0


def test_one_atom_structures(make_chunk):
    train = make_chunk(10, 10, 6, max_atoms=1)
    pool = make_chunk(11, 30, 6, max_atoms=1)
    assert set(pool.rows_per_structure) == {4}
    result = Selector("lcmd", cost_exponent=3.0).fit([train]).select(pool.split(4), 5)
    assert result.kernel == "gram" and len(set(result.indices)) == 5


def test_gram_kernel_is_invariant_to_atom_order_and_rotation():
    rng = np.random.default_rng(0)
    n_atoms, d = 4, 7
    block = rng.standard_normal((1 + 3 * n_atoms, d))
    other = rng.standard_normal((5, d))
    # permute atoms (force-row triples) and rotate every atom's force rows
    perm = rng.permutation(n_atoms)
    rotation = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    force = block[1:].reshape(n_atoms, 3, d)[perm]
    moved = np.vstack([block[:1], np.einsum("ij,ajd->aid", rotation, force).reshape(-1, d)])
    blocks = PosteriorBlocks(np.vstack([block, moved, other]), np.array([0, 13, 26, 31]))
    kernel = StructureKernel(blocks, "gram")
    matrix = kernel.cross(kernel, np.arange(3))
    np.testing.assert_allclose(matrix[0], matrix[1], rtol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), kernel.diag(), rtol=1e-12)


def test_first_pick_in_tp_mode_accounts_for_training_points():
    # bmdal_reg v3 regression: in TP mode the first pick must see the training centres. The pool
    # copy of the large training structure has the largest posterior norm (sigma = 1, other
    # directions have norm 0.5 < sigma), so a selector ignoring the train data would take it.
    d = 6
    big = np.zeros((1, d))
    big[0, 0] = 100.0
    rng = np.random.default_rng(1)
    others = 0.5 * np.linalg.qr(rng.standard_normal((d, d)))[0][1:, :]
    others[:, 0] = 0.0
    values = np.vstack([big, others])
    kinds = np.zeros(len(values), dtype=np.int8)
    train = FeatureChunk(big, np.array([0, 1]), np.array([0]), np.array([1]), kinds[:1])
    pool = FeatureChunk(
        values, np.arange(len(values) + 1), np.arange(len(values)), np.ones(len(values), int), kinds
    )
    maxdiag = Selector("maxdiag", sigma=1.0).fit([train]).select([pool], 1)
    assert maxdiag.indices[0] == 0  # the duplicate has the largest posterior variance
    for method in ("lcmd", "maxdist"):
        tp = Selector(method, sigma=1.0).fit([train]).select([pool], 1)
        assert tp.indices[0] != 0, method
        p = Selector(method, sigma=1.0, mode="p").fit([train]).select([pool], 1)
        assert p.indices[0] == 0, method


def test_cost_aware_acquisition_prefers_small_structures(make_chunk):
    train = make_chunk(12, 20, 8, max_atoms=6)
    pool = make_chunk(13, 100, 8, max_atoms=6)
    plain = Selector("maxdiag", normalization="total").fit([train]).select([pool], 10)
    cheap = Selector("maxdiag", normalization="total", cost_exponent=3.0).fit([train])
    cheap = cheap.select([pool], 10)
    atoms = dict(zip(pool.source_index, pool.n_atoms))
    assert np.mean([atoms[i] for i in cheap.indices]) < np.mean([atoms[i] for i in plain.indices])


def test_one_call_function_matches_estimator(make_chunk):
    train, pool = make_chunk(14, 20, 8), make_chunk(15, 60, 8)
    options = SelectOptions(method="maxdet", shortlist_size=30)
    one = select_structures([train], [pool], 5, options=options, random_state=0)
    two = Selector.from_options(options).fit([train]).select([pool], 5, random_state=0)
    assert list(one.indices) == list(two.indices)
    np.testing.assert_array_equal(one.scores, two.scores)
    assert len(one.shortlist.source_index) == 30
    assert np.all(np.diff(one.shortlist.posterior_variance) <= 0)
