"""Predicted errors: posterior variances equal a brute-force GP, calibration recovers a known
scale, and the interval scores behave as their definitions say."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.select.calibration import (
    calibration_scores,
    coverage,
    fit_calibration,
    gaussian_nll,
    miscalibration_area,
)
from fntk.select.errorbars import ErrorModel, row_variances
from fntk.select.precision import accumulate_gram, factorize_precision


def _chunk(rng: np.random.Generator, n_atoms: list[int], d: int, scale: float = 1.0):
    blocks, kinds = [], []
    for n in n_atoms:
        blocks.append(scale * rng.normal(size=(1 + 3 * n, d)))
        kinds.append(np.r_[ENERGY_ROW, np.full(3 * n, FORCE_ROW)])
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])])
    return FeatureChunk(
        values=np.vstack(blocks),
        offsets=offsets.astype(np.int64),
        source_index=np.arange(len(n_atoms), dtype=np.int64),
        n_atoms=np.array(n_atoms, dtype=np.int64),
        row_kind=np.concatenate(kinds).astype(np.int8),
    )


def test_row_variances_equal_brute_force_gp_posterior():
    rng = np.random.default_rng(0)
    train, test = _chunk(rng, [2, 3, 1], 5), _chunk(rng, [2, 1], 5)
    w_e, w_f, sigma, lam = 2.0, 0.5, 0.3, 0.7
    gram, n_s, n_r, _ = accumulate_gram([train], w_e, w_f)
    precision = factorize_precision(gram, n_s, n_r, sigma=sigma, relative_noise=1.0, jitter_tries=0)
    variances = row_variances(test, precision, force_row_scale=lam)

    # GP with kernel k(a, b) = phi_a . phi_b and noise sigma^2 / w on each training row.
    x, z = train.values, test.values
    noise = np.where(train.row_kind == ENERGY_ROW, sigma**2 / w_e, sigma**2 / w_f)
    k_tt = x @ x.T + np.diag(noise)
    k_zt = z @ x.T
    posterior = np.einsum("ij,ij->i", z, z) - np.einsum(
        "ij,ji->i", k_zt, np.linalg.solve(k_tt, k_zt.T)
    )
    energy = test.row_kind == ENERGY_ROW
    np.testing.assert_allclose(variances.energy, posterior[energy], rtol=1e-9)
    np.testing.assert_allclose(variances.force, posterior[~energy] / lam**2, rtol=1e-9)
    np.testing.assert_array_equal(variances.force_offsets, [0, 6, 9])


def test_calibration_recovers_known_scale_and_noise():
    rng = np.random.default_rng(1)
    v = rng.gamma(1.0, 2.0, size=20000)
    scale, noise = 0.04, 0.01
    errors = rng.normal(size=v.size) * np.sqrt(scale * v + noise)
    fitted = fit_calibration(v, errors)
    assert fitted.scale == pytest.approx(scale, rel=0.05)
    assert fitted.noise == pytest.approx(noise, rel=0.1)
    only_scale = fit_calibration(v, rng.normal(size=v.size) * np.sqrt(3.0 * v))
    assert only_scale.scale == pytest.approx(3.0, rel=0.05)
    assert only_scale.noise < 0.01 * 3.0 * v.mean()


def test_calibration_over_variances_of_many_decades_stays_finite_and_quiet():
    """Predicted variances spread over 16 decades (as the error estimates of a fine-tuned
    model's test set gave): the optimiser's trial steps overflowed ``exp`` (a RuntimeWarning
    in a benchmark's log); the fit is finite and no worse than either closed-form edge."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 50))
        v = 10 ** rng.uniform(-12, 4, n)
        errors = rng.normal(size=n) * 10 ** rng.uniform(-6, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fitted = fit_calibration(v, errors)
        assert np.isfinite([fitted.scale, fitted.noise, fitted.mean_nll]).all()
        edges = [(0.0, np.mean(errors**2)), (np.mean(errors**2 / v), 0.0)]
        assert fitted.mean_nll <= min(gaussian_nll(errors, s * v + t) for s, t in edges) + 1e-12


def test_calibration_skips_nan_and_rejects_no_errors():
    v = np.array([1.0, 2.0, 3.0])
    assert fit_calibration(v, np.array([1.0, np.nan, -2.0])).n_errors == 2
    with pytest.raises(ValueError, match="non-zero"):
        fit_calibration(v, np.zeros(3))


def test_scores_of_a_calibrated_gaussian():
    rng = np.random.default_rng(2)
    sigmas = rng.uniform(0.1, 2.0, size=40000)
    errors = rng.normal(size=sigmas.size) * sigmas
    assert coverage(errors, sigmas, 0.68) == pytest.approx(0.68, abs=0.01)
    assert coverage(errors, sigmas, 0.95) == pytest.approx(0.95, abs=0.01)
    assert miscalibration_area(errors, sigmas) < 0.01
    assert miscalibration_area(errors, 0.2 * sigmas) > 0.2
    expected = np.mean(0.5 * np.log(2 * np.pi * sigmas**2) + 0.5 * errors**2 / sigmas**2)
    assert gaussian_nll(errors, sigmas**2) == pytest.approx(expected)
    scores = calibration_scores(errors, sigmas**2)
    assert set(scores) == {"coverage_68", "coverage_95", "miscalibration_area", "nll"}


def test_error_model_calibrates_to_errors_drawn_from_its_own_posterior():
    rng = np.random.default_rng(3)
    train = _chunk(rng, [3] * 6, 4)
    calibration = _chunk(rng, [3] * 200, 4, scale=2.0)
    model = ErrorModel(relative_noise=1e-2, noise_grid=(1e-2,)).fit(train)
    raw = model.variances(calibration)
    errors = rng.normal(size=raw.force.size) * np.sqrt(5.0 * raw.force)
    energy_errors = rng.normal(size=raw.energy.size) * np.sqrt(5.0 * raw.energy)
    forces = [errors[a:b].reshape(-1, 3) for a, b in itertools.pairwise(raw.force_offsets)]
    model.calibrate(calibration, forces, energy_errors)
    assert model.force_calibration_.scale == pytest.approx(5.0, rel=0.1)
    out = model.estimate(calibration)
    j = 7
    part = 5.0 * raw.force[raw.force_offsets[j] : raw.force_offsets[j + 1]]
    assert out.force_sigma[j] == pytest.approx(
        np.sqrt(model.force_calibration_.variance(part / 5.0).mean())
    )
    assert out.atom_force_sigma[j].shape == (3,)
    assert np.isfinite(out.energy_sigma).all()


def test_adding_structures_lowers_their_variance_and_keeps_sigma():
    rng = np.random.default_rng(4)
    model = ErrorModel().fit(_chunk(rng, [2] * 3, 6))
    pool = _chunk(rng, [2] * 5, 6)
    after = model.add(pool.subset([0, 1]))
    assert after.precision_.sigma == model.precision_.sigma
    before_var, after_var = model.variances(pool).force, after.variances(pool).force
    assert (after_var <= before_var + 1e-15).all()
    assert after_var[:12].sum() < 0.5 * before_var[:12].sum()


def test_full_rank_directions_reproduce_the_posterior():
    rng = np.random.default_rng(5)
    model = ErrorModel().fit(_chunk(rng, [2] * 2, 5))
    pool = _chunk(rng, [2] * 3, 5)
    full = model.variances(pool)
    exact_rank = ErrorModel(rank=5).fit(_chunk(np.random.default_rng(5), [2] * 2, 5))
    np.testing.assert_allclose(exact_rank.variances(pool).force, full.force, rtol=1e-8)
    low = ErrorModel(rank=2).fit(_chunk(np.random.default_rng(5), [2] * 2, 5)).variances(pool)
    assert (low.force <= full.force * (1 + 1e-9)).all()
