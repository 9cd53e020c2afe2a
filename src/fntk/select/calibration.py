"""Calibration of predicted error variances and the scores that judge them.

A predicted error variance ``v`` (the posterior variance of a feature row, in the prior's
arbitrary units) becomes a variance in physical units by ``s v + t``: a scale ``s`` (the prior
amplitude the features do not know) and a noise floor ``t`` (label noise and the error the
linearised model cannot see). Both are fitted by maximum likelihood to the squared errors ``e^2``
of a labelled calibration set, treating each error as ``N(0, s v + t)`` (DESIGN.md section 7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

_LOG_2PI = float(np.log(2.0 * np.pi))
_TINY = 1e-300
NOMINAL_LEVELS = (0.68, 0.95)
"""Central-interval levels whose coverage is reported."""


@dataclass(frozen=True)
class Calibration:
    """Fitted map ``v -> scale * v + noise`` from predicted to calibrated error variance.

    Attributes
    ----------
    scale : float
        ``s`` (squared physical units per unit of predicted variance).
    noise : float
        ``t`` (squared physical units).
    n_errors : int
        Errors the fit used (0: not fitted, the identity map).
    mean_nll : float
        Mean negative log-likelihood of those errors under the fit (nan when not fitted).
    """

    scale: float = 1.0
    noise: float = 0.0
    n_errors: int = 0
    mean_nll: float = float("nan")

    @property
    def fitted(self) -> bool:
        return self.n_errors > 0

    def variance(self, predicted: np.ndarray) -> np.ndarray:
        """Calibrated variance ``scale * predicted + noise``, same shape as ``predicted``."""
        return self.scale * np.asarray(predicted, dtype=np.float64) + self.noise

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def gaussian_nll(errors: np.ndarray, variances: np.ndarray) -> float:
    """Mean negative log-likelihood of ``errors`` under ``N(0, variances)``."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    v = np.maximum(np.asarray(variances, dtype=np.float64).ravel(), _TINY)
    return float(np.mean(0.5 * (_LOG_2PI + np.log(v) + e**2 / v)))


def fit_calibration(predicted: np.ndarray, errors: np.ndarray) -> Calibration:
    """Maximum-likelihood ``scale`` and ``noise`` with ``errors ~ N(0, scale*predicted+noise)``.

    The two edges (``noise = 0``: ``scale = mean(e^2 / v)``; ``scale = 0``:
    ``noise = mean(e^2)``) have closed forms; the interior optimum is found by L-BFGS on the
    logarithms from both edges, and the best of the three is kept.

    Parameters
    ----------
    predicted : ndarray
        Predicted variances ``v >= 0``, any shape; entries paired with a NaN error are skipped.
    errors : ndarray
        Errors (prediction minus reference), same shape; NaN marks an excluded entry.

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        No finite error, or the errors are all zero.
    """
    v = np.asarray(predicted, dtype=np.float64).ravel()
    e = np.asarray(errors, dtype=np.float64).ravel()
    if v.shape != e.shape:
        raise ValueError(f"{v.size} predicted variances for {e.size} errors")
    keep = np.isfinite(e) & np.isfinite(v)
    v, e2 = np.maximum(v[keep], 0.0), e[keep] ** 2
    if not len(e2) or not e2.any():
        raise ValueError("calibration needs at least one non-zero finite error")

    def nll(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        scale, noise = np.exp(log_params)
        variance = np.maximum(scale * v + noise, _TINY)
        slope = 0.5 * (1.0 / variance - e2 / variance**2)  # d nll / d variance, per entry
        value = float(np.mean(0.5 * (np.log(variance) + e2 / variance)))
        return value, np.array([np.mean(slope * scale * v), np.mean(slope) * noise])

    candidates = [(0.0, float(e2.mean()))]
    if (v > 0).all():
        candidates.append((float(np.mean(e2 / v)), 0.0))
    for scale, noise in list(candidates):
        # Start just inside the edge: the interior optimum, when there is one, is found there.
        start = np.log(
            [max(scale, 1e-3 * e2.mean() / max(v.mean(), _TINY)), max(noise, 1e-3 * e2.mean())]
        )
        # Bounded (e^+-100 around the start): a line search's trial step never overflows, and
        # an optimum beyond the bounds is one of the two edges, which are candidates already.
        bounds = [(x - 100.0, x + 100.0) for x in start]
        result = scipy.optimize.minimize(nll, start, jac=True, method="L-BFGS-B", bounds=bounds)
        candidates.append((float(np.exp(result.x[0])), float(np.exp(result.x[1]))))
    scores = [gaussian_nll(np.sqrt(e2), s * v + t) for s, t in candidates]
    best = int(np.argmin(scores))
    scale, noise = candidates[best]
    return Calibration(scale=scale, noise=noise, n_errors=len(e2), mean_nll=scores[best])


def coverage(errors: np.ndarray, sigmas: np.ndarray, level: float) -> float:
    """Fraction of ``errors`` inside the central ``level`` interval ``+- z sigma`` of a normal."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    s = np.asarray(sigmas, dtype=np.float64).ravel()
    keep = np.isfinite(e)
    z = scipy.stats.norm.ppf(0.5 + level / 2.0)
    return float(np.mean(np.abs(e[keep]) <= z * s[keep]))


def miscalibration_area(errors: np.ndarray, sigmas: np.ndarray, n_levels: int = 99) -> float:
    """Mean absolute gap between observed and nominal coverage of central intervals.

    Over ``n_levels`` levels evenly spaced in (0, 1): the area between the calibration curve
    and the diagonal (0 for perfect calibration, at most 0.5).
    """
    e = np.asarray(errors, dtype=np.float64).ravel()
    s = np.maximum(np.asarray(sigmas, dtype=np.float64).ravel(), _TINY)
    keep = np.isfinite(e)
    # |e| / s <= z(p)  <=>  p >= 2 Phi(|e| / s) - 1: the smallest level that covers each error.
    needed = np.sort(2.0 * scipy.special.ndtr(np.abs(e[keep]) / s[keep]) - 1.0)
    levels = np.arange(1, n_levels + 1) / (n_levels + 1)
    observed = np.searchsorted(needed, levels, side="right") / len(needed)
    return float(np.mean(np.abs(observed - levels)))


def spearman(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Spearman rank correlation of two equally long vectors."""
    return float(scipy.stats.spearmanr(predicted, actual).statistic)


def calibration_scores(errors: np.ndarray, variances: np.ndarray) -> dict[str, float]:
    """Coverage at :data:`NOMINAL_LEVELS`, miscalibration area and mean NLL of ``errors`` under
    calibrated ``variances`` (NaN errors skipped)."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    v = np.asarray(variances, dtype=np.float64).ravel()
    keep = np.isfinite(e)
    e, v = e[keep], v[keep]
    sigmas = np.sqrt(np.maximum(v, 0.0))
    out = {f"coverage_{round(100 * level)}": coverage(e, sigmas, level) for level in NOMINAL_LEVELS}
    out["miscalibration_area"] = miscalibration_area(e, sigmas)
    out["nll"] = gaussian_nll(e, v)
    return out
