"""Label saving against random on synthetic curves, with numbers checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.bench.saving import (
    bootstrap_saving,
    budget_savings,
    label_saving,
    labels_to_reach_log,
)

N = np.array([10.0, 20.0, 40.0])
RANDOM = np.array([100.0, 80.0, 60.0])


def test_labels_to_reach_interpolates_in_log_labels():
    # 80 is 2/3 of the way from 100 to 70: n = 10 * 2**(2/3)
    assert labels_to_reach_log(N, np.array([100.0, 70.0, 50.0]), 80.0) == pytest.approx(
        10 * 2 ** (2 / 3)
    )
    assert labels_to_reach_log(N, RANDOM, 100.0) == 10.0  # the first point already reaches it
    assert labels_to_reach_log(N, RANDOM, 60.0) == pytest.approx(40.0)
    assert labels_to_reach_log(N, RANDOM, 59.0) is None


def test_a_better_method_saves_labels_at_every_budget():
    method = np.array([100.0, 70.0, 50.0])
    # budget 20 (target 80): 10 * 2**(2/3) = 15.874 labels -> 1 - 15.874/20 = 0.2063
    # budget 40 (target 60): 20 * 2**0.5 = 28.284 labels -> 1 - 28.284/40 = 0.2929
    savings = budget_savings(N, RANDOM, N, method)
    np.testing.assert_allclose(savings, [0.2063, 0.2929], atol=1e-4)
    assert label_saving(N, RANDOM, N, method) == pytest.approx(0.2496, abs=1e-4)


def test_a_method_that_never_reaches_random_gets_a_negative_saving():
    method = np.array([100.0, 90.0, 85.0])
    # random reaches the method's final 85 at 10 * 2**0.75 = 16.818 labels; over the
    # method's last budget 40, minus one: -0.5795 at both budgets
    np.testing.assert_allclose(budget_savings(N, RANDOM, N, method), [-0.5795] * 2, atol=1e-4)


def test_random_against_itself_saves_nothing():
    assert label_saving(N, RANDOM, N, RANDOM) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(label_saving(N[:1], RANDOM[:1], N, RANDOM))


def test_bootstrap_over_seeds_brackets_the_point_estimate():
    random = np.array([[100.0, 80.0, 60.0], [100.0, 84.0, 64.0], [100.0, 76.0, 56.0]])
    method = np.array([[100.0, 70.0, 50.0], [100.0, 80.0, 62.0], [100.0, 60.0, 40.0]])
    curves = {"id": (N, random, N, method)}
    saving, low, high = bootstrap_saving(curves, n_boot=500)
    assert saving == pytest.approx(label_saving(N, random.mean(0), N, method.mean(0)))
    assert low < saving < high
    assert bootstrap_saving(curves, n_boot=500) == (saving, low, high)  # seeded
    one_seed = {"id": (N, random[:1], N, method[:1])}
    assert bootstrap_saving(one_seed)[1:] == (bootstrap_saving(one_seed)[0],) * 2
    # averaged over splits: a second split where the method equals random halves the saving
    both = {"id": curves["id"], "other": (N, random, N, random)}
    assert bootstrap_saving(both, n_boot=10)[0] == pytest.approx(saving / 2)
