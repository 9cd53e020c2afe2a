"""The model side of the benchmark: fine-tune, evaluate and predict forces, behind one protocol.

The loop and the committee only talk to a :class:`Learner`. Two real ones:

- :class:`FinetuneLearner`: every :meth:`~FinetuneLearner.fit` starts from the pretrained weights
  and takes gradient steps (:func:`fntk.learn.finetune`, any scope, any model); the returned
  :class:`FittedModel` carries its own copy of the trained parameters, so several fitted models
  (a committee, the round-0 model shared by every method) live side by side on one backend.
- :class:`RidgeLearner`: readout fine-tuning of a linear readout (SevenNet) solved exactly as
  ridge regression (:mod:`fntk.learn.ridge`). Each structure's design rows are computed once,
  cached in memory and on disk, and every fit, evaluation and committee prediction after that
  is linear algebra; this is what makes a benchmark of hundreds of fits run on a laptop CPU.

Tests swap in a cheap double.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from ase import Atoms

from fntk.features import FeatureChunk, has_energy_rows, has_force_rows, options_to_json
from fntk.features.assembly import assemble_chunk, stack_block, weigh_rows
from fntk.features.ntk import hidden_basis
from fntk.features.options import FeatureMapOptions
from fntk.features.readout import linear_readout
from fntk.io import atomic_write_npz, structure_fingerprint
from fntk.learn import (
    EnergyShift,
    ErrorMetrics,
    FinetuneOptions,
    LabelledSet,
    evaluate_splits,
    finetune,
)
from fntk.learn.evaluate import error_metrics, free_force_errors
from fntk.learn.ridge import (
    ReadoutDesign,
    design_options,
    fit_readout_ridge,
    readout_designs,
    readout_weights,
)
from fntk.models import ModelBackend

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FittedModel:
    """A model fine-tuned on one labelled set.

    Attributes
    ----------
    weights : dict of str to Tensor, or None
        Fine-tuned values of the trained parameter group (``None`` for test doubles).
    energy_shift : EnergyShift or None
        Per-element reference-energy shift, eV per atom.
    seconds : float
        Wall time of the fine-tuning (E0 fit and gradient steps), s.
    n_steps_run : int
        Gradient steps taken (fewer than asked after early stopping; 0 for a ridge fit).
    n_steps_kept : int or None
        Step whose weights early stopping kept (0: the pretrained weights, only the E0s moved);
        ``None`` when it is ``n_steps_run`` (no held-out slice, ridge fits, test doubles).
    coefficients : ndarray or None
        Readout move ``z`` of a ridge fit (:class:`RidgeLearner`), else ``None``.
    validation_indices : ndarray of int64 or None
        Positions in the labelled set of the structures the fit held out (the fine-tuning
        learner's early-stopping slice), on which the benchmark calibrates its error
        estimates (:mod:`fntk.bench.estimates`); ``None`` or empty when it fitted them all.
    """

    weights: dict[str, torch.Tensor] | None
    energy_shift: EnergyShift | None
    seconds: float
    n_steps_run: int
    coefficients: np.ndarray | None = None
    n_steps_kept: int | None = None
    validation_indices: np.ndarray | None = None


class Learner(Protocol):
    """Fine-tunes a model on labelled structures, evaluates it and predicts forces."""

    def fit(self, labelled: LabelledSet, seed: int) -> FittedModel:
        """Fine-tune from the pretrained weights on ``labelled``; ``seed`` fixes split/order."""
        ...

    def evaluate(
        self, model: FittedModel, splits: Mapping[str, LabelledSet]
    ) -> dict[str, ErrorMetrics]:
        """Errors of ``model`` on every split (meV/atom, meV/Angstrom)."""
        ...

    def predict_forces(self, model: FittedModel, structures: Sequence[Atoms]) -> list[np.ndarray]:
        """Forces of ``model`` on each structure, each (n_atoms, 3) float64 eV/Angstrom."""
        ...

    def pretrained_backend(self) -> ModelBackend:
        """The backend reset to its pretrained weights (for frozen-model features)."""
        ...

    def fit_member(self, labelled: LabelledSet, seed: int) -> FittedModel:
        """A committee member other than the evaluated model (``seed`` from the member)."""
        ...

    def prepare_candidates(self, structures: Sequence[Atoms]) -> float:
        """Work needed before predicting on ``structures`` (ridge: their design rows); its
        cost in s, the time it took when it was done."""
        ...

    def feature_chunk(
        self, options: FeatureMapOptions, structures: Sequence[Atoms], index: np.ndarray
    ) -> tuple[FeatureChunk, float] | None:
        """Features the learner already holds for ``options`` and their cost in s, or
        ``None`` when the feature map must compute them."""
        ...


class FinetuneLearner:
    """:class:`Learner` over one backend and :func:`fntk.learn.finetune`.

    Parameters
    ----------
    backend : ModelBackend
        Loaded pretrained model; its weights change as models are fitted and loaded.
    options : FinetuneOptions
    e0_reference : LabelledSet or None
        Reference structures joining the per-element E0 fit of every round.
    """

    def __init__(
        self,
        backend: ModelBackend,
        options: FinetuneOptions,
        e0_reference: LabelledSet | None = None,
    ) -> None:
        self.backend = backend
        self.options = options
        self.e0_reference = e0_reference

    def fit(self, labelled: LabelledSet, seed: int) -> FittedModel:
        start = time.perf_counter()
        result = finetune(
            self.backend, labelled, self.options, seed=seed, e0_reference=self.e0_reference
        )
        weights = {
            name: param.detach().clone()
            for name, param in self.backend.parameter_group(self.options.scope).items()
        }
        return FittedModel(
            weights=weights,
            energy_shift=result.energy_shift,
            seconds=time.perf_counter() - start,
            n_steps_run=result.n_steps_run,
            n_steps_kept=result.best_step,
            validation_indices=result.validation_indices,
        )

    def evaluate(
        self, model: FittedModel, splits: Mapping[str, LabelledSet]
    ) -> dict[str, ErrorMetrics]:
        self._load(model)
        return evaluate_splits(self.backend, splits, energy_shift=model.energy_shift)

    def predict_forces(self, model: FittedModel, structures: Sequence[Atoms]) -> list[np.ndarray]:
        self._load(model)
        return [forces.numpy() for _, forces in self.backend.predict(list(structures))]

    def pretrained_backend(self) -> ModelBackend:
        self.backend.restore_pretrained()
        return self.backend

    def fit_member(self, labelled: LabelledSet, seed: int) -> FittedModel:
        """:meth:`fit` with the member's seed: another held-out slice and mini-batch order."""
        return self.fit(labelled, seed)

    def prepare_candidates(self, structures: Sequence[Atoms]) -> float:
        return 0.0

    def feature_chunk(
        self, options: FeatureMapOptions, structures: Sequence[Atoms], index: np.ndarray
    ) -> tuple[FeatureChunk, float] | None:
        return None

    def _load(self, model: FittedModel) -> None:
        """Pretrained weights with the fitted group copied in."""
        self.backend.restore_pretrained()
        if model.weights:
            params = self.backend.parameter_group(self.options.scope)
            with torch.no_grad():
                for name, value in model.weights.items():
                    params[name].copy_(value)


def _basis_fingerprint(backend: ModelBackend, options: FeatureMapOptions) -> bytes:
    """Bytes of the design's hidden-space basis (rounded to 6 digits of its scale), so a
    design cache made by another sketch construction is never reused; empty without a linear
    readout (designs then fail with a clear error)."""
    readout = linear_readout(backend, "readout")
    if readout is None:
        return b""
    ntk_options: Any = options  # the design options are always joint
    basis = hidden_basis(readout, ntk_options, backend).detach().to("cpu", torch.float64).numpy()
    scale = float(np.abs(basis).max(initial=0.0)) or 1.0
    return np.round(basis / scale, 6).tobytes()


MEMBER_FRACTION = 0.8
"""Share of the labelled structures each ridge committee member is fitted on."""


class RidgeLearner:
    """:class:`Learner` of readout fine-tuning solved as ridge regression (:mod:`fntk.learn.ridge`).

    Parameters
    ----------
    backend : ModelBackend
        Pretrained model with a linear readout (SevenNet); its weights never change here.
    options : FinetuneOptions
        Loss weights and E0 refit (``scope`` is ``readout`` by nature; every labelled
        structure is fitted, alpha by cross-validation, so ``validation_fraction`` is unused).
    dim : int
        Width ``d`` of the readout move ``z`` (the joint map's sketch width; 128 or more:
        the exact readout). Each design costs one backward pass per column.
    seed : int
        Sketch seed (the joint map's ``seed``).
    e0_reference : LabelledSet or None
        Reference structures joining the per-element E0 fit of every round.
    cache_dir : path or None
        Design rows are stored under it (one npz per computed batch), so a resumed benchmark
        computes none twice.
    """

    _CHUNK = 64

    def __init__(
        self,
        backend: ModelBackend,
        options: FinetuneOptions,
        dim: int,
        *,
        seed: int = 0,
        e0_reference: LabelledSet | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.backend = backend
        self.options = options
        self.design_options = design_options(dim, seed=seed, device=str(backend.device))
        self.e0_reference = e0_reference
        self._designs: dict[str, ReadoutDesign] = {}
        self._seconds: dict[str, float] = {}
        digest = hashlib.sha256(
            json.dumps([backend.spec, options_to_json(self.design_options)]).encode()
        )
        self._basis = _basis_fingerprint(backend, self.design_options)
        digest.update(self._basis)
        key = digest.hexdigest()[:16]
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / f"designs-{key}"
        self._load_cache()
        self._e0: tuple[list[np.ndarray], np.ndarray] | None = None

    def designs(self, structures: Sequence[Atoms]) -> list[ReadoutDesign]:
        """Design of each structure, computing (and caching) those not seen before."""
        keys = [structure_fingerprint(a) for a in structures]
        missing = list({k: a for k, a in zip(keys, structures) if k not in self._designs}.items())
        for start in range(0, len(missing), self._CHUNK):
            part = missing[start : start + self._CHUNK]
            begin = time.perf_counter()
            computed = readout_designs(self.backend, [a for _, a in part], self.design_options)
            seconds = (time.perf_counter() - begin) / len(part)
            for (k, _), design in zip(part, computed):
                self._designs[k] = design
                self._seconds[k] = seconds
            self._save_part([k for k, _ in part])
            logger.info("readout designs: %d of %d new", start + len(part), len(missing))
        return [self._designs[k] for k in keys]

    def design_seconds(self, structures: Sequence[Atoms]) -> float:
        """Wall time the designs of ``structures`` took when they were computed, s."""
        return float(sum(self._seconds[structure_fingerprint(a)] for a in structures))

    def prepare_candidates(self, structures: Sequence[Atoms]) -> float:
        """Designs of ``structures`` (predictions need them); the time they took, s."""
        self.designs(structures)
        return self.design_seconds(structures)

    def fit(self, labelled: LabelledSet, seed: int) -> FittedModel:
        designs = self.designs(labelled.structures)
        start = time.perf_counter()
        e0_numbers, e0_residuals = self._e0_reference()
        result = fit_readout_ridge(
            designs,
            labelled.energies,
            labelled.forces,
            self.options,
            seed=seed,
            e0_numbers=e0_numbers,
            e0_residuals=e0_residuals,
        )
        return FittedModel(
            weights=None,
            energy_shift=result.energy_shift,
            seconds=time.perf_counter() - start,
            n_steps_run=0,
            coefficients=result.coefficients,
        )

    def fit_member(self, labelled: LabelledSet, seed: int) -> FittedModel:
        """A committee member: :meth:`fit` on a seeded random :data:`MEMBER_FRACTION` of
        ``labelled`` (without replacement). A ridge fit is a convex solve, so members that
        differ only in seed (held-out slice, folds) barely disagree; subsampling the data
        (subbagging) is the ridge analogue of other data orders and initialisations."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        size = max(2, math.ceil(MEMBER_FRACTION * len(labelled)))
        sample = np.sort(rng.choice(len(labelled), size=min(size, len(labelled)), replace=False))
        return self.fit(labelled.subset(sample), seed)

    def evaluate(
        self, model: FittedModel, splits: Mapping[str, LabelledSet]
    ) -> dict[str, ErrorMetrics]:
        metrics = {}
        for name, split in splits.items():
            energies, forces = self._predict(model, self.designs(split.structures))
            metrics[name] = error_metrics(
                (energies - split.energies) / split.n_atoms,
                free_force_errors(
                    np.concatenate([f - ref for f, ref in zip(forces, split.forces)]),
                    split.structures,
                ),
                int(split.n_atoms.sum()),
            )
        return metrics

    def predict_forces(self, model: FittedModel, structures: Sequence[Atoms]) -> list[np.ndarray]:
        return self._predict(model, self.designs(structures))[1]

    def pretrained_backend(self) -> ModelBackend:
        self.backend.restore_pretrained()
        return self.backend

    def weights(self, model: FittedModel) -> dict[str, torch.Tensor]:
        """Readout parameters of ``model`` for the backend
        (:func:`fntk.learn.ridge.readout_weights`); loaded together with ``model.energy_shift``
        they give the same predictions."""
        assert model.coefficients is not None
        return readout_weights(self.backend, model.coefficients, self.design_options)

    def feature_chunk(
        self, options: FeatureMapOptions, structures: Sequence[Atoms], index: np.ndarray
    ) -> tuple[FeatureChunk, float] | None:
        """Features of a map with force rows from the designs, when ``options`` ask for rows
        that the designs already hold (readout group, same width, seed, dtype and hidden
        basis: a PCA basis also depends on the map's rows and lambda), with the seconds the
        designs took; ``None`` otherwise."""
        mine = self.design_options
        if not has_force_rows(options.name) or any(
            getattr(options, f) != getattr(mine, f) for f in ("group", "dim", "seed", "dtype")
        ):
            return None
        if _basis_fingerprint(self.backend, options) != self._basis:
            return None
        blocks, kinds = [], []
        for design in self.designs(structures):
            energy, forces = weigh_rows(
                design.energy_row, design.force_rows, len(design.numbers), options
            )
            block, block_kinds = stack_block(
                energy if has_energy_rows(options.name) else None, forces
            )
            blocks.append(block.astype(options.dtype))
            kinds.append(block_kinds)
        chunk = assemble_chunk(blocks, kinds, structures, index)
        return chunk, self.design_seconds(structures)

    def _predict(
        self, model: FittedModel, designs: Sequence[ReadoutDesign]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Energies (eV, with the E0 shift) and forces of ``model`` on each design."""
        coefficients = model.coefficients
        assert coefficients is not None
        predicted = [design.predict(coefficients) for design in designs]
        energies = np.array([e for e, _ in predicted])
        if model.energy_shift is not None:
            energies += model.energy_shift.of_structures([d.numbers for d in designs])
        return energies, [f for _, f in predicted]

    def _e0_reference(self) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Atomic numbers and pretrained-model residuals of the E0 reference structures."""
        if self.e0_reference is None:
            return [], None
        if self._e0 is None:
            predicted = self.pretrained_backend().predict(self.e0_reference.structures)
            residuals = self.e0_reference.energies - np.array([e for e, _ in predicted])
            self._e0 = ([np.asarray(a.numbers) for a in self.e0_reference.structures], residuals)
        return self._e0

    def _save_part(self, keys: list[str]) -> None:
        if self.cache_dir is None:
            return
        designs = [self._designs[k] for k in keys]
        arrays = {
            "keys": np.array(keys),
            "seconds": np.array([self._seconds[k] for k in keys]),
            "n_atoms": np.array([len(d.numbers) for d in designs]),
            "numbers": np.concatenate([d.numbers for d in designs]),
            "energy": np.array([d.energy for d in designs]),
            "forces": np.concatenate([d.forces for d in designs]),
            "energy_rows": np.stack([d.energy_row for d in designs]),
            "force_rows": np.concatenate([d.force_rows for d in designs]),
        }
        index = len(list(self.cache_dir.glob("part-*.npz")))
        atomic_write_npz(self.cache_dir / f"part-{index:05d}.npz", **arrays)

    def _load_cache(self) -> None:
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return
        for path in sorted(self.cache_dir.glob("part-*.npz")):
            with np.load(path) as a:
                atoms = np.concatenate([[0], np.cumsum(a["n_atoms"])])
                for j, key in enumerate(a["keys"].tolist()):
                    lo, hi = atoms[j], atoms[j + 1]
                    self._designs[key] = ReadoutDesign(
                        numbers=a["numbers"][lo:hi],
                        energy=float(a["energy"][j]),
                        forces=a["forces"][lo:hi],
                        energy_row=a["energy_rows"][j],
                        force_rows=a["force_rows"][3 * lo : 3 * hi],
                    )
                    self._seconds[key] = float(a["seconds"][j])
