"""Label saving against random: the metric of the seed's companion paper, as pure functions.

For each budget ``b`` on random's learning curve (every round after the shared round 0), the
labels a method needs to reach random's error at ``b`` are found by interpolating the method's
curve linearly in log-labels; its saving there is ``1 - labels / b``. A method that never
reaches random's error at ``b`` gets a negative saving: the labels random needs to reach the
method's final error, over the method's last budget, minus one. The method's saving is the
mean over budgets; :func:`bootstrap_saving` resamples seeds (paired: seed ``s`` of a method
and of random share their round-0 model) for an interval.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def labels_to_reach_log(n_labels: np.ndarray, errors: np.ndarray, target: float) -> float | None:
    """Labels at which a curve first reaches ``target``, interpolated linearly in log-labels.

    Parameters
    ----------
    n_labels : ndarray, shape (n,)
        Increasing labelled-set sizes (positive).
    errors : ndarray, shape (n,)
        Error at each size.
    target : float

    Returns
    -------
    float or None
        ``n_labels[0]`` when the first point is at or below ``target``; else the size between
        the last point above and the first point at or below, with ``log(n)`` linear in the
        error; ``None`` when no point reaches ``target``.
    """
    errors = np.asarray(errors, dtype=np.float64)
    below = np.flatnonzero(errors <= target)
    if below.size == 0:
        return None
    j = int(below[0])
    if j == 0:
        return float(n_labels[0])
    x0, x1 = np.log(n_labels[j - 1]), np.log(n_labels[j])
    y0, y1 = errors[j - 1], errors[j]
    return float(np.exp(x0 + (x1 - x0) * (y0 - target) / (y0 - y1)))


def budget_savings(
    reference_n: np.ndarray,
    reference_errors: np.ndarray,
    n_labels: np.ndarray,
    errors: np.ndarray,
) -> np.ndarray:
    """Saving of a method at each budget of the reference (random) curve after its first point.

    Parameters
    ----------
    reference_n, reference_errors : ndarray, shape (m,)
        Random's mean curve.
    n_labels, errors : ndarray, shape (n,)
        The method's mean curve.

    Returns
    -------
    ndarray, shape (m - 1,), float64
        ``1 - labels / budget`` where the method reaches random's error at that budget, else
        ``labels random needs for the method's final error / method's last budget - 1``.
    """
    savings = []
    for budget, target in zip(reference_n[1:], reference_errors[1:]):
        needed = labels_to_reach_log(n_labels, errors, float(target))
        if needed is not None:
            savings.append(1.0 - needed / float(budget))
            continue
        # the method stays above random's error at this budget, so random reaches the
        # method's final error (at the latest at this budget)
        random_needs = labels_to_reach_log(reference_n, reference_errors, float(errors[-1]))
        assert random_needs is not None
        savings.append(random_needs / float(n_labels[-1]) - 1.0)
    return np.asarray(savings, dtype=np.float64)


def label_saving(
    reference_n: np.ndarray,
    reference_errors: np.ndarray,
    n_labels: np.ndarray,
    errors: np.ndarray,
) -> float:
    """Mean of :func:`budget_savings` over budgets (NaN with fewer than two reference points)."""
    savings = budget_savings(reference_n, reference_errors, n_labels, errors)
    return float(savings.mean()) if savings.size else float("nan")


SeedCurves = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""``(reference_n, reference_table, n_labels, table)``: each table (n_seeds, n_rounds) holds
one seed's curve per row; row ``s`` of both tables is the same seed."""


def bootstrap_saving(
    curves: Mapping[str, SeedCurves],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Saving averaged over ``curves`` (e.g. test splits) and its bootstrap interval over seeds.

    Parameters
    ----------
    curves : mapping of str to SeedCurves
        Per split: random's and the method's per-seed curves, seeds in the same order.
    n_boot : int
        Bootstrap resamples; each draws seeds with replacement (the same draw for every split
        and for both methods) and recomputes the mean curves and the saving.
    level : float
        Coverage of the percentile interval.
    seed : int
        Seed of the resampling.

    Returns
    -------
    tuple of float
        ``(saving, low, high)``: the saving of the seed-mean curves, averaged over the splits,
        and the interval's ends (equal to the saving for a single seed).
    """
    keys = list(curves)
    n_seeds = curves[keys[0]][1].shape[0]

    def mean_saving(rows: np.ndarray) -> float:
        values = [
            label_saving(rn, rt[rows].mean(axis=0), n, t[rows].mean(axis=0))
            for rn, rt, n, t in (curves[k] for k in keys)
        ]
        return float(np.mean(values))

    point = mean_saving(np.arange(n_seeds))
    if n_seeds < 2:
        return point, point, point
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    draws = np.array(
        [mean_saving(np.asarray(rng.integers(n_seeds, size=n_seeds))) for _ in range(n_boot)]
    )
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return point, float(low), float(high)
