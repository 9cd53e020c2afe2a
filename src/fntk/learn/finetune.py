"""One fine-tuning round of a pretrained MLIP on the labelled set (DESIGN.md section 5).

:func:`finetune` always starts from the pretrained weights, holds out a seeded slice of the
labelled set for early stopping, fits per-element reference energies to the pretrained model's
residuals by least squares, then takes a fixed number of Adam steps on mini-batches of
structures with only the chosen parameter group unfrozen. It keeps the weights of the best
validation loss. Shuffling uses its own :class:`torch.Generator`, never a global RNG, so the
same seed gives bit-identical weights on the CPU. On CUDA, the models' scatter-add kernels use
atomics, so two runs differ by rounding (about 1e-5 in the weights after 20 steps of SevenNet-0
on an H100) unless the caller enables ``torch.use_deterministic_algorithms``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from fntk.errors import InputError
from fntk.learn.batching import LabelledBatch, iter_labelled_batches, make_batch, predict
from fntk.learn.e0 import EnergyShift, fit_energy_shift
from fntk.learn.labelled import LabelledSet
from fntk.learn.options import FinetuneOptions
from fntk.models import ModelBackend

_EVAL_BATCH_SIZE = 16


@dataclass(frozen=True)
class TrainingRecord:
    """One point of the training curve.

    Attributes
    ----------
    step : int
        Gradient steps taken so far.
    learning_rate : float
        Step size of the next step.
    train_loss : float or None
        Mean mini-batch loss of the steps since the previous record (``None`` at step 0).
    validation_loss : float or None
        Loss on the held-out structures (``None`` without a held-out slice).
    """

    step: int
    learning_rate: float
    train_loss: float | None
    validation_loss: float | None


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tuning round produced; the backend itself holds the fine-tuned weights.

    Attributes
    ----------
    energy_shift : EnergyShift
        Per-element reference-energy shift to add to the backend's energies.
    curve : list of TrainingRecord
    best_step : int
        Step whose weights were kept (the last step without a held-out slice).
    n_steps_run : int
        Steps taken (fewer than ``options.steps_for(n_train)`` after early stopping).
    stopped_early : bool
    train_indices, validation_indices : ndarray of int64
        Positions in the labelled set of the training and held-out structures.
    n_trainable_parameters : int
    seconds_e0_fit, seconds_training : float
        Wall time of the reference-energy fit and of the gradient steps (with validation).
    seconds_per_step : float
        Mean wall time of one gradient step, without validation (NaN when no step was taken).
    """

    energy_shift: EnergyShift
    curve: list[TrainingRecord]
    best_step: int
    n_steps_run: int
    stopped_early: bool
    train_indices: np.ndarray
    validation_indices: np.ndarray
    n_trainable_parameters: int
    seconds_e0_fit: float
    seconds_training: float
    seconds_per_step: float


def finetune(
    backend: ModelBackend,
    labelled: LabelledSet,
    options: FinetuneOptions | None = None,
    *,
    seed: int = 0,
    e0_reference: LabelledSet | None = None,
) -> FinetuneResult:
    """Fine-tune ``backend`` in place on ``labelled``, starting from its pretrained weights.

    Parameters
    ----------
    backend : ModelBackend
        Reset with :meth:`~fntk.models.ModelBackend.restore_pretrained` first, then trained.
        Only the parameter group ``options.scope`` changes; ``requires_grad`` flags are
        restored on return.
    labelled : LabelledSet
        Reference energies (eV) and forces (eV/Angstrom).
    options : FinetuneOptions or None
        Default ``FinetuneOptions()``.
    seed : int
        Seeds the held-out split and the mini-batch order.
    e0_reference : LabelledSet or None
        Structures labelled by the same method that join the least-squares fit of the
        per-element shift, never the gradient steps (``e0_reference.xyz`` of
        :func:`fntk.data.make_dataset`: a bulk metal or a small molecule per element). They
        pin the shift of each element, which slab data alone may not (with one adsorbate
        atom on every 12-atom slab, +t per metal atom and -12t per adsorbate atom fit equally
        well), and give a shift to elements that ``labelled`` lacks, such as the unseen metals
        of an out-of-distribution split. Without them such elements shift by 0.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    InputError
        A structure holds an element the model does not know (names file and frame).
    """
    options = FinetuneOptions() if options is None else options
    _check_species(backend, labelled)
    if e0_reference is not None:
        _check_species(backend, e0_reference)
    backend.restore_pretrained()
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = held_out_split(len(labelled), options.validation_fraction, generator)

    start = time.perf_counter()
    energy_shift = _initial_shift(backend, labelled, train_idx, options.refit_e0, e0_reference)
    energy_shift = energy_shift.to(backend.device)
    energy_shift.delta.requires_grad_(options.train_e0)
    seconds_e0 = time.perf_counter() - start

    trainable = backend.parameter_group(options.scope)
    params = list(trainable.values()) + ([energy_shift.delta] if options.train_e0 else [])
    with _only_trainable(backend, trainable):
        run = _Run(backend, labelled, energy_shift, options, params, train_idx, val_idx)
        start = time.perf_counter()
        run.train(generator)
        seconds_training = time.perf_counter() - start
    return FinetuneResult(
        energy_shift=energy_shift,
        curve=run.curve,
        best_step=run.best_step,
        n_steps_run=run.step,
        stopped_early=run.stopped_early,
        train_indices=np.asarray(train_idx, dtype=np.int64),
        validation_indices=np.asarray(val_idx, dtype=np.int64),
        n_trainable_parameters=sum(p.numel() for p in params),
        seconds_e0_fit=seconds_e0,
        seconds_training=seconds_training,
        seconds_per_step=run.step_seconds / run.step if run.step else math.nan,
    )


class _Run:
    """State of one training loop: optimiser, schedule, curve and best weights."""

    def __init__(
        self,
        backend: ModelBackend,
        labelled: LabelledSet,
        energy_shift: EnergyShift,
        options: FinetuneOptions,
        params: list[torch.nn.Parameter],
        train_idx: list[int],
        val_idx: list[int],
    ) -> None:
        self.backend = backend
        self.labelled = labelled
        self.energy_shift = energy_shift
        self.options = options
        self.params = params
        self.train_idx = train_idx
        self.val_idx = val_idx
        self.curve: list[TrainingRecord] = []
        self.step = 0
        self.step_seconds = 0.0
        self.best_step = 0
        self.best_loss = math.inf
        self.best_state: list[torch.Tensor] = []
        self.stopped_early = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.n_steps = options.steps_for(len(train_idx))
        if params and self.n_steps > 0:
            self.optimizer = torch.optim.Adam(params, lr=options.learning_rate)

    def train(self, generator: torch.Generator) -> None:
        options = self.options
        self._record(train_losses=[])
        losses: list[float] = []
        batches = self._shuffled_batches(generator)
        while self.step < self.n_steps and self.optimizer is not None:
            indices = next(batches)
            tick = time.perf_counter()
            self._set_learning_rate()
            loss = self._step(make_batch(self.labelled, indices, self.backend))
            self.step_seconds += time.perf_counter() - tick
            self.step += 1
            losses.append(loss)
            if self.step % options.eval_every == 0 or self.step == self.n_steps:
                if self._record(losses):
                    self.stopped_early = True
                    break
                losses = []
        if self.val_idx:
            with torch.no_grad():
                for param, value in zip(self.params, self.best_state):
                    param.copy_(value)
        else:
            self.best_step = self.step

    def _shuffled_batches(self, generator: torch.Generator) -> Iterator[list[int]]:
        """Epochs of seeded permutations of the training structures, cut into batches."""
        size = self.options.batch_size
        while True:
            order = torch.randperm(len(self.train_idx), generator=generator).tolist()
            for start in range(0, len(order), size):
                yield [self.train_idx[k] for k in order[start : start + size]]

    def _set_learning_rate(self) -> None:
        assert self.optimizer is not None
        options = self.options
        lr = options.learning_rate
        if options.schedule == "cosine":
            lr *= 0.5 * (1.0 + math.cos(math.pi * self.step / self.n_steps))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _step(self, batch: LabelledBatch) -> float:
        assert self.optimizer is not None
        self.optimizer.zero_grad(set_to_none=True)
        energies, forces = predict(self.backend, self.energy_shift, batch.graph, create_graph=True)
        energy_sum, force_sum = self._loss_sums(energies, forces, batch)
        loss = self._combine(energy_sum, batch.graph.n_graphs, force_sum, batch.forces.numel())
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def _record(self, train_losses: list[float]) -> bool:
        """Append a curve point; keep the best weights; return True to stop early."""
        val_loss = self._validation_loss() if self.val_idx else None
        lr = self.optimizer.param_groups[0]["lr"] if self.optimizer else 0.0
        train_loss = float(np.mean(train_losses)) if train_losses else None
        self.curve.append(TrainingRecord(self.step, lr, train_loss, val_loss))
        if val_loss is None:
            return False
        if val_loss < self.best_loss:
            self.best_loss, self.best_step = val_loss, self.step
            self.best_state = [p.detach().clone() for p in self.params]
        evaluations_since_best = (self.step - self.best_step) // self.options.eval_every
        return evaluations_since_best >= self.options.patience

    def _validation_loss(self) -> float:
        energy_sum = force_sum = 0.0
        n_components = 0
        for batch in iter_labelled_batches(
            self.labelled, self.val_idx, _EVAL_BATCH_SIZE, self.backend
        ):
            energies, forces = predict(self.backend, self.energy_shift, batch.graph)
            e, f = self._loss_sums(energies.detach(), forces.detach(), batch)
            energy_sum += float(e)
            force_sum += float(f)
            n_components += batch.forces.numel()
        return float(self._combine(energy_sum, len(self.val_idx), force_sum, n_components))

    def _loss_sums(
        self, energies: torch.Tensor, forces: torch.Tensor, batch: LabelledBatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sums of ``rho`` over per-atom energy errors and over force-component errors."""
        per_atom = (energies - batch.energies) / batch.graph.n_atoms.to(energies.dtype)
        return self._rho(per_atom).sum(), self._rho(forces - batch.forces).sum()

    def _rho(self, error: torch.Tensor) -> torch.Tensor:
        if self.options.loss == "huber":
            return torch.nn.functional.huber_loss(
                error, torch.zeros_like(error), reduction="none", delta=self.options.huber_delta
            )
        return error.square()

    def _combine(self, energy_sum, n_structures: int, force_sum, n_components: int):
        options = self.options
        return (
            options.energy_weight * energy_sum / n_structures
            + options.force_weight * force_sum / n_components
        )


def _check_species(backend: ModelBackend, labelled: LabelledSet) -> None:
    for atoms, file, index in zip(
        labelled.structures, labelled.source_files, labelled.frame_indices
    ):
        unknown = backend.check_species(atoms.numbers)
        if unknown:
            raise InputError(
                f"elements {unknown} are unknown to model {backend.spec}",
                file=file,
                index=index,
                hint="remove the frame or use a model trained on these elements",
            )


def held_out_split(
    n: int, validation_fraction: float, generator: torch.Generator
) -> tuple[list[int], list[int]]:
    """Seeded held-out slice; at least one training structure remains."""
    n_val = min(round(validation_fraction * n), n - 1)
    order = torch.randperm(n, generator=generator).tolist()
    return sorted(order[n_val:]), sorted(order[:n_val])


def _initial_shift(
    backend: ModelBackend,
    labelled: LabelledSet,
    train_idx: list[int],
    refit: bool,
    e0_reference: LabelledSet | None,
) -> EnergyShift:
    """Least-squares shift on the pretrained model's residuals (training + reference rows)."""
    fit_sets = [(labelled, train_idx)]
    if e0_reference is not None:
        fit_sets.append((e0_reference, list(range(len(e0_reference)))))
    numbers = [s.structures[i].numbers for s, indices in fit_sets for i in indices]
    if not refit:
        return EnergyShift(sorted({int(z) for z in np.concatenate(numbers)}))
    residuals = np.concatenate([_residuals(backend, s, indices) for s, indices in fit_sets])
    return fit_energy_shift(numbers, residuals)


def _residuals(backend: ModelBackend, labelled: LabelledSet, indices: list[int]) -> np.ndarray:
    """Reference minus pretrained energy of each structure at ``indices``, eV, float64."""
    predicted = [
        predict(backend, None, batch.graph)[0].detach().double().cpu().numpy()
        for batch in iter_labelled_batches(labelled, indices, _EVAL_BATCH_SIZE, backend)
    ]
    return labelled.energies[indices] - np.concatenate(predicted)


@contextmanager
def _only_trainable(backend: ModelBackend, trainable: dict[str, torch.nn.Parameter]):
    """Freeze every parameter outside ``trainable``; restore all flags in ``finally``."""
    flags = {name: p.requires_grad for name, p in backend.named_parameters()}
    try:
        for name, param in backend.named_parameters():
            param.requires_grad_(name in trainable)
        yield
    finally:
        for name, param in backend.named_parameters():
            param.requires_grad_(flags[name])
