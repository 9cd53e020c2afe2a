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
