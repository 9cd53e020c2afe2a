"""The model side of the benchmark: fine-tune, evaluate and predict forces, behind one protocol.

The loop and the committee only talk to a :class:`Learner`. :class:`FinetuneLearner` is the real
one: every :meth:`~FinetuneLearner.fit` starts from the pretrained weights
(:func:`fntk.al.finetune`) and returns a :class:`FittedModel` that carries its own copy of the
trained parameters, so several fitted models (a committee, the round-0 model shared by every
method) can live side by side on one backend. Tests swap in a cheap double.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from ase import Atoms

from fntk.al import (
    EnergyShift,
    ErrorMetrics,
    FinetuneOptions,
    LabelledSet,
    evaluate_splits,
    finetune,
)
from fntk.models import ModelBackend


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
        Gradient steps taken (fewer than asked after early stopping).
    """

    weights: dict[str, torch.Tensor] | None
    energy_shift: EnergyShift | None
    seconds: float
    n_steps_run: int


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


class FinetuneLearner:
    """:class:`Learner` over one backend and :func:`fntk.al.finetune`.

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

    def _load(self, model: FittedModel) -> None:
        """Pretrained weights with the fitted group copied in."""
        self.backend.restore_pretrained()
        if model.weights:
            params = self.backend.parameter_group(self.options.scope)
            with torch.no_grad():
                for name, value in model.weights.items():
                    params[name].copy_(value)
