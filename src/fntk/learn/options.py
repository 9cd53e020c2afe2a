"""Options of fine-tuning in the active-learning loop (DESIGN.md section 5).

:class:`FinetuneOptions` holds every knob of one fine-tuning round: which parameters learn, the
loss and its weights, the optimiser, mini-batches and early stopping. Defaults and their units
live here only; :func:`fntk.learn.finetune` takes the built object.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fntk.options import ParameterGroup as Scope

"""Parameter group that receives gradients; the others stay frozen (``ModelBackend`` groups)."""

LossName = Literal["mse", "huber"]
Schedule = Literal["constant", "cosine"]


class FinetuneOptions(BaseModel):
    """Options of one fine-tuning round.

    The loss of a mini-batch of structures ``s`` with ``N_s`` atoms is

    ``w_E * mean_s rho((E_s - E_s^ref) / N_s) + w_F * mean_{s,a,k} rho(F_sak - F_sak^ref)``

    with ``rho(x) = x**2`` (``mse``) or the Huber function of width ``huber_delta`` (``huber``):
    the energy term averages per-atom energy errors (eV/atom) over structures, the force term
    averages force-component errors (eV/Angstrom) over every component of the batch, as in
    mace-torch's weighted energy-forces loss.

    Attributes
    ----------
    scope : {"readout", "last-interaction", "all"}
        Parameters that learn. ``readout`` (default) has the fewest parameters and is the least
        likely to forget the pretraining; ``last-interaction`` adds the last message-passing
        block; ``all`` trains every parameter the pretrained model trains.
    loss : {"mse", "huber"}
        Pointwise loss ``rho``. Default ``mse``.
    huber_delta : float
        Width of the Huber function, in the unit of each term (eV/atom for energies,
        eV/Angstrom for forces); quadratic below it, linear above. Default 0.01, as mace-torch.
    energy_weight : float
        ``w_E``, in 1/(eV/atom)^2 for ``mse``: weight of the per-atom energy term. Default 1.
    force_weight : float
        ``w_F``, in 1/(eV/Angstrom)^2 for ``mse``: weight of the force term. Default 100, the
        mace-torch default ratio: force labels carry 3N numbers per structure and are what
        molecular dynamics needs. The joint energy-force NTK matches this loss with
        ``lambda = sqrt(w_F / (3 N w_E))`` for structures of ``N`` atoms.
    refit_e0 : bool
        Fit per-element reference energies ``delta_E0[z]`` to the residuals ``E^ref - E^model``
        of the pretrained model on the training structures by least squares before the first
        step (default ``True``): a new level of theory shifts energies by a per-element constant.
    train_e0 : bool
        Also learn ``delta_E0`` by gradient descent (default ``False``: keep the least-squares
        values).
    n_steps : int
        Number of gradient (Adam) steps. Default 100. ``benchmarks/finetune_cost.py`` measured
        about 4 s per step of 8 adsorbate slabs (14 atoms) and 6 s per step of 8 30-atom
        molecules for SevenNet-0 on one shared CPU thread, 4-5 energy+force evaluations each,
        so a default round takes minutes on a laptop CPU (on an H100: 0.15-0.2 s per step).
        Every scope costs about the same: force matching back-propagates through the whole
        network whichever group learns.
    min_epochs : float
        Take at least this many passes over the training structures: the step count is
        ``max(n_steps, ceil(min_epochs * n_train / batch_size))``, so a larger labelled set is
        trained as thoroughly as a small one (a fixed step count leaves it under-trained, and a
        learning curve flat). Default 0: ``n_steps`` exactly. Early stopping still applies.
    batch_size : int
        Structures per mini-batch (batched into one graph). Default 8.
    learning_rate : float
        Adam step size at the start of the schedule. Default 1e-3.
    schedule : {"constant", "cosine"}
        Learning-rate schedule over ``n_steps``; ``cosine`` decays to zero. Default ``cosine``.
    validation_fraction : float
        Share of the labelled structures held out for early stopping, in [0, 0.5]. Default 0.1.
        Rounded to a whole number; with fewer than one held-out structure (or 0) there is no
        early stopping and the last weights are kept.
    eval_every : int
        Steps between validation evaluations (and points of the training curve). Default 10.
    patience : int
        Stop after this many evaluations without a lower validation loss; the weights of the
        best evaluation are restored at the end. Default 5.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope = "readout"
    loss: LossName = "mse"
    huber_delta: float = Field(0.01, gt=0.0)
    energy_weight: float = Field(1.0, ge=0.0)
    force_weight: float = Field(100.0, ge=0.0)
    refit_e0: bool = True
    train_e0: bool = False
    n_steps: int = Field(100, ge=0)
    min_epochs: float = Field(0.0, ge=0.0)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    schedule: Schedule = "cosine"
    validation_fraction: float = Field(0.1, ge=0.0, le=0.5)
    eval_every: int = Field(10, ge=1)
    patience: int = Field(5, ge=1)

    def steps_for(self, n_train: int) -> int:
        """Adam steps of a run on ``n_train`` training structures (see ``min_epochs``)."""
        if self.n_steps == 0:
            return 0
        return max(self.n_steps, math.ceil(self.min_epochs * n_train / self.batch_size))
