"""Readout fine-tuning solved exactly: ridge regression on the linear readout's design rows.

SevenNet-0's energy is linear in its readout: ``E = sum_i sigma_{z_i} a^T h_i + const`` with
``a`` the product of the two bias-free readout layers (:mod:`fntk.features.readout`). Training
only the readout therefore moves ``a`` and nothing else, and energies and forces are *linear*
in the move: with ``Delta a = B z`` (``B`` the readout NTK's square root, or a ``d``-column
sketch of it, as in the joint feature map)

``E(z) = E_pre + e^T z``,  ``F(z) = F_pre + G z``,

where ``e`` and ``G`` (3N x d) are the joint feature map's energy row and force rows with
``lambda = 1`` and ``per_atom = False``. Minimising the fine-tuning loss of
:class:`~fntk.learn.FinetuneOptions` (``mse``) plus a Gaussian prior ``alpha |z|^2`` is then a
``d x d`` linear solve instead of hundreds of gradient steps through the network: the same
function space as Adam on the ``readout`` scope (exactly, for ``d >= 128``), reached without
optimisation error. ``alpha`` plays the part of early stopping: it is chosen by
cross-validation over the labelled structures with the one-standard-error rule, and every
labelled structure enters the fit (:func:`fit_readout_ridge`).

Why not the held-out slice and the plain CV minimum (the first version): on xtb-reactions
(d = 32, random nested labels, 4 draws, test force RMSE at 20 / 30 / 40 / 50 / 60 labels)
they gave 885 / 775 / 739 / 684 / 662 meV/A with a worst draw of 1212 at 20 labels and test
error rising by > 3% in 12% (id) and 22% (ood) of the steps that added labels; fitting on
every structure with the 1-SE alpha gives 727 / 687 / 687 / 696 / 621 and 9% / 9%. The
remaining rises come from single high-force geometries (a C2H2 bond stretched to 11 eV/A
forces alone moved the 40-label test RMSE from 679 to 726): a d-wide readout move cannot fit
them and the squared loss lets them pull it; the 1-SE rule's stronger ridge damps that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fntk.chunk import FeatureChunk
from fntk.errors import CapabilityError
from fntk.features import compute_features, default_options
from fntk.features.ntk import hidden_basis
from fntk.features.options import JointNTKOptions
from fntk.features.readout import linear_readout
from fntk.learn.e0 import EnergyShift, fit_energy_shift
from fntk.learn.options import FinetuneOptions
from fntk.models import ModelBackend

ALPHA_GRID = tuple(10.0**-k for k in range(11))
"""Ridge strengths tried, relative to ``trace(A) / d`` of the data's normal matrix ``A``."""
DEFAULT_RELATIVE_ALPHA = 1e-5
"""Relative ridge strength used when there are too few structures to cross-validate."""
CV_FOLDS = 5
"""Folds (of structures) of the cross-validation that picks ``alpha``."""
MIN_FOLD_ALPHA_STRUCTURES = 3
"""Fewer labelled structures than this: :data:`DEFAULT_RELATIVE_ALPHA`, no cross-validation."""


@dataclass(frozen=True)
class ReadoutDesign:
    """What the linear readout model needs of one structure.

    Attributes
    ----------
    numbers : ndarray of int64, shape (N,)
    energy : float
        Energy of the pretrained model, eV.
    forces : ndarray, shape (N, 3)
        Forces of the pretrained model, eV/Angstrom.
    energy_row : ndarray, shape (d,)
        ``dE/dz``, eV.
    force_rows : ndarray, shape (3N, d)
        ``dF/dz`` in atom-major x, y, z order, eV/Angstrom.
    """

    numbers: np.ndarray
    energy: float
    forces: np.ndarray
    energy_row: np.ndarray
    force_rows: np.ndarray

    def predict(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (eV, without E0 shift) and forces (N, 3) of the model with coordinates ``z``."""
        energy = self.energy + float(self.energy_row @ z)
        forces = self.forces + (self.force_rows @ z).reshape(-1, 3)
        return energy, forces


@dataclass(frozen=True)
class RidgeFit:
    """A readout fitted by :func:`fit_readout_ridge`.

    Attributes
    ----------
    coefficients : ndarray, shape (d,)
        ``z``: the readout move in the design's coordinates.
    energy_shift : EnergyShift
        Per-element reference-energy shift (eV per atom).
    alpha : float
        Ridge strength used (absolute, in the loss's units).
    cv_loss : float or None
        Cross-validated loss of the chosen ``alpha`` (``None`` without cross-validation).
    """

    coefficients: np.ndarray
    energy_shift: EnergyShift
    alpha: float
    cv_loss: float | None


def design_options(dim: int, *, seed: int = 0, device: str = "auto") -> JointNTKOptions:
    """Joint-map options whose rows are the design rows: readout group, ``lambda = 1``, total
    energies (not per atom), float32 like the model."""
    return default_options(
        "joint", dim=dim, seed=seed, force_weight=1.0, per_atom=False, device=device
    )  # type: ignore[return-value]


def readout_designs(
    backend: ModelBackend, structures: Sequence, options: JointNTKOptions
) -> list[ReadoutDesign]:
    """Design of every structure: pretrained energy and forces plus the joint map's rows.

    Raises
    ------
    CapabilityError
        The backend's readout is not linear in its node features (only SevenNet's is), or the
        options are not design options (:func:`design_options`).
    """
    if options.group != "readout" or options.per_atom or options.force_weight != 1.0:
        raise CapabilityError("design rows need readout-group joint options with lambda = 1")
    if linear_readout(backend, "readout") is None:
        raise CapabilityError(
            f"model {backend.spec} has no linear readout, so the ridge learner cannot fit it; "
            "use the 'finetune' learner (gradient steps) for this model"
        )
    chunk: FeatureChunk = compute_features(backend, structures, options)
    predictions = backend.predict(list(structures), batch_size=4)
    designs = []
    for s, (energy, forces) in enumerate(predictions):
        block = np.asarray(chunk.block(s), dtype=np.float64)
        designs.append(
            ReadoutDesign(
                numbers=np.asarray(structures[s].numbers, dtype=np.int64),
                energy=float(energy),
                forces=forces.numpy().astype(np.float64),
                energy_row=block[0],
                force_rows=block[1:],
            )
        )
    return designs


def fit_readout_ridge(
    designs: Sequence[ReadoutDesign],
    energies: np.ndarray,
    forces: Sequence[np.ndarray],
    options: FinetuneOptions,
    *,
    seed: int = 0,
    e0_numbers: Sequence[np.ndarray] = (),
    e0_residuals: np.ndarray | None = None,
) -> RidgeFit:
    """Fit the readout move ``z`` and the E0 shift to labelled structures.

    Parameters
    ----------
    designs : sequence of ReadoutDesign
        Of the labelled structures.
    energies : ndarray, shape (n,)
        Reference energies, eV.
    forces : sequence of ndarray
        Reference forces, each (N_s, 3), eV/Angstrom.
    options : FinetuneOptions
        ``energy_weight``, ``force_weight`` and ``refit_e0`` are used; the loss must be
        ``mse`` (a ridge solve minimises squares). ``validation_fraction`` is not: there is
        no early stopping to feed, and cross-validation already uses every structure.
    seed : int
        Seeds the cross-validation folds.
    e0_numbers, e0_residuals : optional
        Reference structures joining the E0 least-squares fit (their atomic numbers, and
        reference minus pretrained energies, eV).

    Returns
    -------
    RidgeFit
        ``alpha`` is the largest of :data:`ALPHA_GRID` (times ``trace(A) / d``) whose
        :data:`CV_FOLDS`-fold cross-validated loss (structure folds seeded by ``seed``) is
        within one standard error (over folds) of the lowest one; with fewer than
        :data:`MIN_FOLD_ALPHA_STRUCTURES` structures, :data:`DEFAULT_RELATIVE_ALPHA`.
    """
    if options.loss != "mse":
        raise CapabilityError(
            "the ridge learner minimises squared errors; use loss 'mse' or the 'finetune' learner"
        )
    train = list(range(len(designs)))
    residuals = np.asarray(energies, dtype=np.float64) - np.array([d.energy for d in designs])
    numbers = [designs[i].numbers for i in train]
    if options.refit_e0:
        fit_numbers = numbers + list(e0_numbers)
        fit_residuals = np.concatenate(
            [residuals[train], np.asarray(e0_residuals if e0_residuals is not None else [])]
        )
        shift = fit_energy_shift(fit_numbers, fit_residuals)
    else:
        shift = EnergyShift(sorted({int(z) for z in np.concatenate(numbers)}))
    targets_e = residuals - shift.of_structures([d.numbers for d in designs])
    targets_f = [
        np.asarray(f, dtype=np.float64).reshape(-1) - d.forces.reshape(-1)
        for f, d in zip(forces, designs)
    ]
    system = _NormalEquations(designs, targets_e, targets_f, options, train)
    relative, cv_loss = _cross_validated_alpha(designs, targets_e, targets_f, options, train, seed)
    return RidgeFit(
        coefficients=system.solve(relative),
        energy_shift=shift,
        alpha=relative * system.scale,
        cv_loss=cv_loss,
    )


def _cross_validated_alpha(
    designs: Sequence[ReadoutDesign],
    targets_e: np.ndarray,
    targets_f: Sequence[np.ndarray],
    options: FinetuneOptions,
    train: Sequence[int],
    seed: int,
) -> tuple[float, float | None]:
    """Relative ``alpha`` of :data:`ALPHA_GRID` by the one-standard-error rule over K structure
    folds, and its cross-validated loss (see :func:`fit_readout_ridge`)."""
    if len(train) < MIN_FOLD_ALPHA_STRUCTURES:
        return DEFAULT_RELATIVE_ALPHA, None
    order = np.random.default_rng(np.random.SeedSequence([seed, 1])).permutation(train)
    folds = [f for f in np.array_split(order, min(CV_FOLDS, len(train))) if len(f)]
    losses = np.zeros((len(folds), len(ALPHA_GRID)))
    for k, fold in enumerate(folds):
        rest = sorted(set(train) - set(fold.tolist()))
        fitted = _NormalEquations(designs, targets_e, targets_f, options, rest)
        scored = _NormalEquations(designs, targets_e, targets_f, options, fold.tolist())
        losses[k] = [scored.loss(fitted.solve(a)) for a in ALPHA_GRID]
    mean = np.round(losses.mean(axis=0), 12)
    error = losses.std(axis=0, ddof=1) / np.sqrt(len(folds))
    best = int(np.argmin(mean))
    # ALPHA_GRID decreases: the first alpha within one standard error is the strongest.
    chosen = int(np.flatnonzero(mean <= mean[best] + error[best])[0])
    return ALPHA_GRID[chosen], float(mean[chosen])


class _NormalEquations:
    """``A z = b`` of the weighted least-squares loss of some structures, eigen-decomposed.

    Loss ``w_E mean_s ((r_s - e_s.z) / N_s)^2 + w_F mean_c (R_c - G_c.z)^2`` over the structures'
    energy residuals ``r`` and force-component residuals ``R``, as in fine-tuning.
    """

    def __init__(
        self,
        designs: Sequence[ReadoutDesign],
        targets_e: np.ndarray,
        targets_f: Sequence[np.ndarray],
        options: FinetuneOptions,
        indices: Sequence[int],
    ) -> None:
        atoms = np.array([len(designs[i].numbers) for i in indices], dtype=np.float64)
        energy_rows = np.stack([designs[i].energy_row for i in indices]) / atoms[:, None]
        energy_targets = targets_e[list(indices)] / atoms
        force_rows = np.concatenate([designs[i].force_rows for i in indices])
        force_targets = np.concatenate([targets_f[i] for i in indices])
        w_e = options.energy_weight / len(indices)
        w_f = options.force_weight / len(force_targets)
        self.matrix = w_e * energy_rows.T @ energy_rows + w_f * force_rows.T @ force_rows
        self.vector = w_e * energy_rows.T @ energy_targets + w_f * force_rows.T @ force_targets
        self.constant = w_e * energy_targets @ energy_targets + w_f * force_targets @ force_targets
        self.scale = max(float(np.trace(self.matrix)) / len(self.matrix), np.finfo(float).tiny)
        self._eigenvalues, self._eigenvectors = np.linalg.eigh(self.matrix)
        self._projected = self._eigenvectors.T @ self.vector

    def solve(self, relative_alpha: float) -> np.ndarray:
        """Minimiser of the loss plus ``relative_alpha * scale * |z|^2``."""
        alpha = relative_alpha * self.scale
        return self._eigenvectors @ (self._projected / (self._eigenvalues.clip(0) + alpha))

    def loss(self, z: np.ndarray) -> float:
        """The loss (without the prior) at ``z``."""
        return float(z @ self.matrix @ z - 2 * z @ self.vector + self.constant)


def readout_weights(
    backend: ModelBackend, coefficients: np.ndarray, options: JointNTKOptions
) -> dict[str, torch.Tensor]:
    """Readout parameters of the pretrained model moved by ``z`` (a real SevenNet readout).

    The move ``Delta a = B z`` is made by the first readout layer alone, whose parameters
    ``a`` is linear in: the minimum-norm change ``delta = M_1 (M_1^T M_1)^-1 Delta a`` with
    ``M_1`` the rows of the readout map ``M`` (:class:`fntk.features.readout.LinearReadout`)
    that belong to that layer. Loading these weights reproduces :meth:`ReadoutDesign.predict`.
    """
    backend.restore_pretrained()
    readout = linear_readout(backend, "readout")
    if readout is None:
        raise CapabilityError(f"model {backend.spec} has no linear readout")
    params = backend.parameter_group("readout")
    names = list(params)
    sizes = [params[n].numel() for n in names]
    first = slice(0, sizes[0])
    basis = hidden_basis(readout, options, backend).double()
    move = basis @ torch.as_tensor(coefficients, dtype=torch.float64)
    m1 = readout.matrix[first].double()
    delta = m1 @ torch.linalg.solve(m1.T @ m1, move)
    weights = {n: p.detach().clone() for n, p in params.items()}
    weights[names[0]] += delta.reshape(weights[names[0]].shape).to(weights[names[0]].dtype)
    return weights
