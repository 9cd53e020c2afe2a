"""Predicted test errors of a benchmark round (:mod:`fntk.bench.estimates`) with the real ridge
learner on SevenNet-0: which slice calibrates, which precision predicts, and the scores."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from conftest import made_up_molecules as labelled
from fntk.bench import BenchOptions
from fntk.bench.estimates import RoundErrorEstimator
from fntk.bench.learner import RidgeLearner, _basis_fingerprint
from fntk.learn import FinetuneOptions
from fntk.learn.evaluate import free_atoms
from fntk.select.calibration import spearman
from fntk.select.errorbars import ErrorModel

NAMES = ["H2O", "CH4", "NH3", "CH3OH", "HCOOH", "H2CO", "C2H6", "HCN", "CO2", "N2H4"]


@pytest.fixture(scope="module")
def backend():
    from fntk.models import load_backend

    return load_backend("sevennet-0", device="cpu", dtype=torch.float32)


class CountingRidge(RidgeLearner):
    """The real ridge learner, counting the structures of every fit."""

    fitted: list[int]

    def fit(self, labelled, seed):
        self.fitted = [*getattr(self, "fitted", []), len(labelled)]
        return super().fit(labelled, seed)


@pytest.fixture(scope="module")
def sets():
    return labelled(NAMES[:8], 0), {"test": labelled(NAMES[2:], 1)}


def _expected(learner, estimator, model, calibration_model, train, rest, held, test, add):
    """The documented procedure, spelled out: fit on ``rest``, calibrate on ``held`` with the
    errors of ``calibration_model``, add ``held`` when the round's model trained on it."""

    def chunk(structures):
        return estimator._chunk(structures)

    def errors(m, split):
        out = []
        for atoms, f, ref in zip(
            split.structures, learner.predict_forces(m, split.structures), split.forces
        ):
            e = f - ref
            e[~free_atoms(atoms)] = np.nan
            out.append(e)
        return out

    em = ErrorModel(force_row_scale=estimator.force_weight).fit(
        chunk(train.subset(rest).structures)
    )
    em.calibrate(
        chunk(train.subset(held).structures), errors(calibration_model, train.subset(held)), None
    )
    if add:
        em = em.add(chunk(train.subset(held).structures))
    variance = em.estimate(chunk(test.structures)).component_variance
    measured = [np.sqrt(np.mean(e**2)) for e in errors(model, test)]
    offsets = np.concatenate([[0], np.cumsum(3 * test.n_atoms)])
    predicted = [np.sqrt(variance[a:b].mean()) for a, b in itertools.pairwise(offsets)]
    return 1000 * np.sqrt(variance.mean()), spearman(np.array(predicted), np.array(measured))


def test_ridge_round_is_calibrated_on_a_held_out_slice_refitted_without_it(backend, sets):
    train, tests = sets
    # The sketch basis: its designs serve every lambda (a PCA basis depends on lambda).
    features = {"dim": 6, "basis": "sketch", "reference": "builtin-v1"}
    options = BenchOptions(features=features, calibration_fraction=0.25, device="cpu")
    learner = CountingRidge(backend, FinetuneOptions(), 6)
    learner.design_options = learner.design_options.model_copy(update={"basis": "sketch"})
    learner._basis = _basis_fingerprint(backend, learner.design_options)
    estimator = RoundErrorEstimator(learner, options, train.structures)
    model = learner.fit(train, seed=0)
    result = estimator.estimate(model, train, tests, seed=0)
    assert learner.fitted == [8, 6]  # the round's model, then one fit without the 2-slice
    assert result.note is None and result.seconds > 0
    # The designs are the features: nothing was computed with the pretrained model.
    assert not estimator._blocks
    estimate = result.splits["test"]
    assert np.isfinite(estimate.predicted_force_rmse_mev_per_ang)
    assert -1 <= estimate.force_rmse_spearman <= 1
    # Seeded: the same slice and numbers again; the slice is the one the procedure names.
    again = estimator.estimate(model, train, tests, seed=0).splits["test"]
    assert again == estimate
    held, rest, calibration_model = estimator._slice(model, train, 0)
    assert len(held) == 2 and sorted([*held, *rest]) == list(range(8))
    rmse, rho = _expected(
        learner, estimator, model, calibration_model, train, rest, held, tests["test"], True
    )
    assert estimate.predicted_force_rmse_mev_per_ang == pytest.approx(rmse, rel=1e-6)
    assert estimate.force_rmse_spearman == pytest.approx(rho)


def test_a_model_with_its_own_held_out_slice_is_calibrated_on_it_without_a_fit(backend, sets):
    train, tests = sets
    options = BenchOptions(features={"dim": 6}, device="cpu")
    learner = CountingRidge(backend, FinetuneOptions(), 6)
    estimator = RoundErrorEstimator(learner, options, train.structures)
    rest = np.array([0, 1, 2, 4, 5, 7])
    held = np.array([3, 6])
    model = dataclasses.replace(learner.fit(train.subset(rest), seed=0), validation_indices=held)
    result = estimator.estimate(model, train, tests, seed=0)
    assert learner.fitted == [6]  # no fit beyond the model's own
    rmse, rho = _expected(learner, estimator, model, model, train, rest, held, tests["test"], False)
    assert result.splits["test"].predicted_force_rmse_mev_per_ang == pytest.approx(rmse, rel=1e-6)
    assert result.splits["test"].force_rmse_spearman == pytest.approx(rho, nan_ok=True)


def test_too_few_labels_for_a_slice_give_nan_and_a_note(backend, sets):
    train, tests = sets
    learner = RidgeLearner(backend, FinetuneOptions(), 6)
    estimator = RoundErrorEstimator(learner, BenchOptions(features={"dim": 6}), train.structures)
    small = train.subset([0, 1, 2])
    result = estimator.estimate(learner.fit(small, 0), small, tests, seed=0)
    assert "no predicted test errors with 3 labels" in result.note
    assert np.isnan(result.splits["test"].predicted_force_rmse_mev_per_ang)
