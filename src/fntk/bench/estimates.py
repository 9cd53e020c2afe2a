"""Predicted against measured test errors of each round's model (``fntk bench``).

Per round, the error model of :mod:`fntk.select.errorbars` (posterior variance of the frozen
pretrained model's joint features, DESIGN.md section 7) is calibrated the way a user would:
on a slice held out of the labelled set, with the errors of a model that did not train on it.

- A model that already held a slice out (the fine-tuning learner's early-stopping slice,
  :attr:`FittedModel.validation_indices`) is calibrated on that slice: no extra fit. Its
  precision is that of the structures it trained on.
- Otherwise (the ridge learner fits every labelled structure) a seeded slice of
  ``calibration_fraction`` is held out, the learner fits the rest once more (for ridge a small
  linear solve on cached design rows), and the calibration (scale, noise, the precision's
  noise) found on the slice is kept when the slice's rows join the precision: the estimate is
  then that of the round's model, which trained on everything.

On each test split with forces the calibrated model gives ``predicted_force_rmse_mev_per_ang``
(the root mean calibrated variance over the split's free force components: the quantity the
measured ``force_rmse_mev_per_ang`` estimates) and ``force_rmse_spearman`` (rank correlation
of predicted and measured per-structure force RMSE). The features are the ridge learner's
design rows when it has them, else computed once per structure with the pretrained model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fntk.bench.learner import FittedModel, Learner
from fntk.bench.methods import feature_options
from fntk.bench.options import BenchOptions
from fntk.features import FeatureChunk, compute_features
from fntk.features.options import JointNTKOptions
from fntk.io import structure_fingerprint
from fntk.learn import LabelledSet
from fntk.learn.evaluate import masked_force_errors
from fntk.select.calibration import spearman
from fntk.select.errorbars import ErrorModel

FEATURE_CHUNK = 64
"""Structures per feature computation (bounds the memory of force blocks)."""

MIN_SLICE = 2
"""Fewest structures a slice held out here (and the rest) may hold; smaller sets get no
estimate. A slice the model held out itself is used at any size."""


@dataclass(frozen=True)
class SplitEstimate:
    """Predicted against measured force errors of one model on one test split.

    Attributes
    ----------
    predicted_force_rmse_mev_per_ang : float
        ``sqrt(mean calibrated variance)`` over the split's free force components, meV/A
        (NaN without an estimate or without forces).
    force_rmse_spearman : float
        Spearman correlation of predicted and measured per-structure force RMSE (NaN with
        fewer than 3 structures with forces).
    """

    predicted_force_rmse_mev_per_ang: float = float("nan")
    force_rmse_spearman: float = float("nan")


@dataclass(frozen=True)
class RoundEstimates:
    """The estimates of one round's model on every split, and what they cost.

    Attributes
    ----------
    splits : dict of str to SplitEstimate
    seconds : float
        Features computed for it, the extra fit, the calibration, the predictions, s.
    note : str or None
        Why there is no estimate (a labelled set too small to hold a slice out).
    """

    splits: dict[str, SplitEstimate]
    seconds: float
    note: str | None = None


class RoundErrorEstimator:
    """Calibrated predictions of each round's test force RMSE (see the module docstring).

    Parameters
    ----------
    learner : Learner
        The benchmark's learner (fits, predictions, design rows or the pretrained backend).
    options : BenchOptions
        ``calibration_fraction`` and the joint map's options
        (:func:`~fntk.bench.methods.feature_options`).
    init : sequence of Atoms
        The initial set (its mean atom count sets the joint map's lambda: the options are the
        ``joint`` method's).
    """

    def __init__(self, learner: Learner, options: BenchOptions, init: Sequence[Atoms]) -> None:
        self.learner = learner
        self.options = options
        self.features = feature_options("joint", options, init)
        assert isinstance(self.features, JointNTKOptions)
        self._blocks: dict[str, FeatureChunk] = {}

    def estimate(
        self,
        model: FittedModel,
        labelled: LabelledSet,
        tests: Mapping[str, LabelledSet],
        seed: int,
    ) -> RoundEstimates:
        """Calibrate on a held-out slice of ``labelled``; predict every split's errors."""
        start = time.perf_counter()
        slice_idx, fit_idx, calibration_model = self._slice(model, labelled, seed)
        if calibration_model is None:
            note = (
                f"no predicted test errors with {len(labelled)} labels: a calibration slice and "
                f"the rest need {MIN_SLICE} structures each"
            )
            return RoundEstimates({name: SplitEstimate() for name in tests}, 0.0, note)
        held_out = labelled.subset(slice_idx)
        slice_chunk = self._chunk(held_out.structures)
        error_model = ErrorModel(force_row_scale=self.force_weight)
        error_model.fit(self._chunk(labelled.subset(fit_idx).structures))
        error_model.calibrate(
            slice_chunk, self._force_errors(calibration_model, held_out), energy_errors=None
        )
        if calibration_model is not model:  # the round's model also trained on the slice
            error_model = error_model.add(slice_chunk)
        splits = {
            name: self._split(error_model, model, split) if split.has_forces else SplitEstimate()
            for name, split in tests.items()
        }
        return RoundEstimates(splits, time.perf_counter() - start)

    @property
    def force_weight(self) -> float:
        """The joint map's lambda (Angstrom), divided out of force variances."""
        assert isinstance(self.features, JointNTKOptions)
        return self.features.force_weight

    def _slice(
        self, model: FittedModel, labelled: LabelledSet, seed: int
    ) -> tuple[np.ndarray, np.ndarray, FittedModel | None]:
        """(calibration slice, the rest, the model whose errors calibrate); no model when the
        labelled set is too small."""
        n = len(labelled)
        held = model.validation_indices
        # The model's own slice is taken at any size: calibrating elsewhere costs a fit.
        if held is not None and len(held) and n - len(held) >= 1:
            rest = np.setdiff1d(np.arange(n), held)
            return np.sort(np.asarray(held, dtype=np.int64)), rest, model
        size = max(MIN_SLICE, math.ceil(self.options.calibration_fraction * n))
        if n - size < MIN_SLICE:
            return np.zeros(0, np.int64), np.arange(n), None
        rng = np.random.default_rng(np.random.SeedSequence([seed, n, 22]))
        slice_idx = np.sort(rng.choice(n, size=size, replace=False))
        rest = np.setdiff1d(np.arange(n), slice_idx)
        return slice_idx, rest, self.learner.fit(labelled.subset(rest), seed)

    def _split(
        self, error_model: ErrorModel, model: FittedModel, split: LabelledSet
    ) -> SplitEstimate:
        estimate = error_model.estimate(self._chunk(split.structures))
        errors = self._force_errors(model, split)
        offsets = np.concatenate([[0], np.cumsum(3 * split.n_atoms)])
        predicted, measured, pooled = [], [], []
        for j, error in enumerate(errors):
            variance = estimate.component_variance[offsets[j] : offsets[j + 1]]
            keep = np.isfinite(error.ravel())
            if not keep.any():
                continue
            pooled.append(variance[keep])
            predicted.append(np.sqrt(variance[keep].mean()))
            measured.append(np.sqrt(np.mean(error.ravel()[keep] ** 2)))
        if not pooled:
            return SplitEstimate()
        rmse = 1000.0 * float(np.sqrt(np.concatenate(pooled).mean()))
        rho = spearman(np.array(predicted), np.array(measured)) if len(predicted) >= 3 else math.nan
        return SplitEstimate(rmse, rho)

    def _force_errors(self, model: FittedModel, labelled: LabelledSet) -> list[np.ndarray]:
        """Predicted minus reference forces, eV/A; NaN on fixed atoms and missing labels."""
        return masked_force_errors(
            self.learner.predict_forces(model, labelled.structures), labelled
        )

    def _chunk(self, structures: Sequence[Atoms]) -> FeatureChunk:
        """Joint features of ``structures`` (design rows, or computed once per structure)."""
        index = np.arange(len(structures))
        derived = self.learner.feature_chunk(self.features, structures, index)
        if derived is not None:
            return derived[0]
        keys = [structure_fingerprint(a) for a in structures]
        missing = {k: a for k, a in zip(keys, structures) if k not in self._blocks}
        todo = list(missing.items())
        for start in range(0, len(todo), FEATURE_CHUNK):
            part = todo[start : start + FEATURE_CHUNK]
            backend = self.learner.pretrained_backend()
            computed = compute_features(backend, [a for _, a in part], self.features)
            for j, (key, _) in enumerate(part):
                self._blocks[key] = computed.subset([j])
        return FeatureChunk.concatenate([self._blocks[k] for k in keys])
