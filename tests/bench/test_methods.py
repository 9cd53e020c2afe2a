"""Committee disagreement, top-k ties, random picks and the method registry."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.bench import (
    METHOD_NAMES,
    BenchOptions,
    build_bench_options,
    build_method,
    force_disagreement,
)
from fntk.bench.methods import joint_force_weight, member_seed, top_k


def test_force_disagreement_by_hand():
    # two members, two structures; structure 0 (2 atoms) agrees on atom 0 and
    # differs by (2, 0, 0) on atom 1; structure 1 (1 atom) differs by (0, 3, 4).
    member_a = [np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]), np.zeros((1, 3))]
    member_b = [np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]]), np.array([[0.0, 3.0, 4.0]])]
    # population std of two values is half their difference: atom 1 -> norm(1, 0, 0) = 1
    np.testing.assert_allclose(force_disagreement([member_a, member_b]), [0.5, 2.5])
    np.testing.assert_allclose(force_disagreement([member_a, member_b], "max"), [1.0, 2.5])


def test_force_disagreement_invariances():
    rng = np.random.default_rng(0)
    members = [[rng.normal(size=(5, 3))] for _ in range(4)]
    base = force_disagreement(members)
    shifted = [[f[0] + np.array([1.0, -2.0, 3.0])] for f in members]  # common offset
    np.testing.assert_allclose(force_disagreement(shifted), base)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = [[f[0] @ q.T] for f in members]
    np.testing.assert_allclose(force_disagreement(rotated), base)
    permuted = [[f[0][::-1]] for f in members]
    np.testing.assert_allclose(force_disagreement(permuted), base)
    identical = [[members[0][0]] for _ in range(3)]
    np.testing.assert_allclose(force_disagreement(identical), [0.0], atol=1e-12)


def test_force_disagreement_checks_members():
    with pytest.raises(ValueError, match="two members"):
        force_disagreement([[np.zeros((1, 3))]])
    with pytest.raises(ValueError, match="every structure"):
        force_disagreement([[np.zeros((1, 3))], []])


def test_top_k_breaks_ties_by_index():
    scores = np.array([1.0, 3.0, 3.0, 2.0])
    assert top_k(scores, np.array([7, 9, 4, 5]), 3).tolist() == [4, 9, 5]


def test_registry_builds_every_method():
    options = BenchOptions()
    for name in METHOD_NAMES:
        assert build_method(name, options).name == name
    with pytest.raises(ValueError, match="choose one of"):
        build_method("bald", options)


def test_member_seeds_differ():
    seeds = {member_seed(s, k) for s in range(3) for k in range(1, 4)}
    assert len(seeds) == 9


def test_joint_force_weight_is_the_loss_weighting_of_the_fine_tuning_options(tiny_sets):
    """The bench's lambda is fntk.features.force_row_weight of its own fine-tuning loss weights
    (that function is checked against the loss's Gauss-Newton matrix in test_force_row_weight)."""
    from fntk.features import force_row_weight

    structures = tiny_sets["init"].structures
    for tuning in ({}, {"energy_weight": 3.0, "force_weight": 7.0}):
        options = build_bench_options(finetune=tuning)
        expected = force_row_weight(
            options.finetune.energy_weight,
            options.finetune.force_weight,
            [len(a) for a in structures],
        )
        assert joint_force_weight(options, structures) == pytest.approx(expected)


def test_fps_is_farthest_point_sampling_on_the_raw_descriptors():
    """The fps method's selector picks what brute-force farthest-point sampling picks in the
    descriptors' Euclidean metric, with the labelled structures as the first centres."""
    from fntk.bench.methods import FarthestPointMethod
    from fntk.chunk import ENERGY_ROW, FeatureChunk

    rng = np.random.default_rng(4)

    def chunk(values: np.ndarray, start: int) -> FeatureChunk:
        n = len(values)
        return FeatureChunk(
            values=values,
            offsets=np.arange(n + 1, dtype=np.int64),
            source_index=np.arange(start, start + n, dtype=np.int64),
            n_atoms=np.full(n, 5, dtype=np.int64),
            row_kind=np.full(n, ENERGY_ROW, dtype=np.int8),
        )

    # anisotropic descriptors: a posterior (Mahalanobis) metric would pick differently
    scales = np.array([5.0, 3.0, 1.0, 0.3, 0.1, 0.05])
    train = rng.normal(size=(4, 6)) * scales
    pool = rng.normal(size=(50, 6)) * scales + 0.3
    nearest = np.min(np.linalg.norm(pool[:, None] - train[None], axis=2), axis=1)
    expected = []
    for _ in range(8):
        pick = int(np.argmax(np.where(np.isin(np.arange(50), expected), -1.0, nearest)))
        expected.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[pick], axis=1))
    method = FarthestPointMethod(BenchOptions())
    for chunk_size in (1, 13, 50):
        selector = method._selector(50).fit([chunk(train, -4)])
        picks = selector.select(chunk(pool, 0).split(chunk_size), 8, random_state=0).indices
        assert picks.tolist() == expected


class _DescriptorLearner:
    """Test double of the learner's feature side: one-row features from the geometry.

    A double because real features need SevenNet-0 (seconds per structure); the method under
    test only passes them on to the selector.
    """

    def feature_chunk(self, options, structures, index):
        from fntk.chunk import ENERGY_ROW, FeatureChunk

        values = np.array([np.sort(a.positions.ravel())[[0, 3, 5, 8]] for a in structures])
        n = len(structures)
        chunk = FeatureChunk(
            values=values,
            offsets=np.arange(n + 1, dtype=np.int64),
            source_index=np.asarray(index, dtype=np.int64),
            n_atoms=np.array([len(a) for a in structures], dtype=np.int64),
            row_kind=np.full(n, ENERGY_ROW, dtype=np.int8),
        )
        return chunk, 0.0


def test_feature_method_covers_the_target_structures(tiny_sets):
    """With targets, the joint method's picks are the covering selector's picks with the
    target's features as ``target_chunks``; a target changes the data fingerprint."""
    from fntk.bench import BenchPool, SelectionContext
    from fntk.bench.methods import FeatureMethod
    from fntk.select import Selector

    from .conftest import labelled_atoms

    learner = _DescriptorLearner()
    pool = [a.copy() for a in tiny_sets["pool"].structures]
    init = [a.copy() for a in tiny_sets["init"].structures]
    target = [labelled_atoms(200 + i) for i in range(4)]
    data = BenchPool(init=init, pool=pool, candidates=np.arange(10), target=target)
    plain = BenchPool(init=init, pool=pool, candidates=np.arange(10))
    assert data.fingerprint() != plain.fingerprint()
    method = FeatureMethod("joint", BenchOptions())
    method.prepare(data, learner, None)
    context = SelectionContext(
        learner=learner,
        model=None,
        labelled=None,
        labelled_pool=np.zeros(0, dtype=np.int64),
        candidates=np.arange(10),
        seed=1,
        round=0,
    )
    picks = method.acquire(context, 3).indices
    features = lambda structures, index: learner.feature_chunk(None, structures, index)[0]  # noqa: E731
    expected = (
        Selector("coverage")
        .fit([features(init, -1 - np.arange(3))])
        .select(
            [features(pool, np.arange(10))],
            3,
            random_state=np.random.SeedSequence([1, 0]),
            target_chunks=[features(target, np.arange(4))],
        )
    )
    assert picks.tolist() == expected.indices.tolist()
    lcmd = FeatureMethod("joint", BenchOptions(select={"method": "lcmd"}))
    lcmd.prepare(data, learner, None)
    assert any("target structures not used" in s for s in lcmd.status_)


def test_feature_options_of_each_map(tiny_sets):
    """force-ntk and joint take the NTK settings of BenchOptions.features; embedding and
    energy-ntk keep their map defaults; by default joint is the default joint map (what
    ``fntk select`` runs) and force-ntk the same basis."""
    from fntk.bench.methods import feature_options
    from fntk.features import default_options
    from fntk.features.options import DEFAULT_JOINT_MAP

    DEFAULT_BASIS = dict(zip(("basis", "dim", "reference"), DEFAULT_JOINT_MAP))

    structures = tiny_sets["init"].structures
    lam = joint_force_weight(BenchOptions(), structures)
    for name, before in [
        ("embedding", default_options("embedding", device="auto")),
        ("energy-ntk", default_options("energy-ntk", device="auto")),
        ("force-ntk", default_options("force-ntk", device="auto", **DEFAULT_BASIS)),
        ("joint", default_options("joint", device="auto", force_weight=lam)),
    ]:
        assert feature_options(name, BenchOptions(), structures) == before, name
    options = BenchOptions(
        device="cpu",
        joint_force_weight=0.5,
        features={"basis": "pca", "dim": 12, "reference": "builtin-v2", "batch_size": 3},
    )
    joint = feature_options("joint", options, structures)
    assert (joint.basis, joint.dim, joint.reference, joint.force_weight) == (
        "pca",
        12,
        "builtin-v2",
        0.5,
    )
    assert feature_options("force-ntk", options, structures).basis == "pca"
    energy = feature_options("energy-ntk", options, structures)
    assert (energy.dim, energy.basis, energy.batch_size, energy.device) == (512, "sketch", 3, "cpu")
