"""Predicted errors of a model from the posterior variance of its own features.

The linearised model (DESIGN.md section 7) has outputs ``y(x) = Phi(x) theta`` with prior
``theta ~ N(0, I)`` and noise ``sigma^2 / w`` on each labelled row; given the training set the
posterior covariance of a structure's outputs is ``sigma^2 Phi(x) A^{-1} Phi(x)^T`` with the
precision ``A`` of :mod:`fntk.select.precision` (for a linear readout this is the last-layer
prediction rigidity). The diagonal gives a variance per output row: the energy row (eV/atom
for the joint map) and each force component (eV/Angstrom once the joint map's ``lambda`` is
divided out). A :class:`~fntk.select.calibration.Calibration` per kind turns them into
physical variances, from which:

- ``force_sigma``: the predicted force RMSE of a structure, ``sqrt(mean_c var_c)`` (eV/A);
- ``energy_sigma``: the predicted energy error, eV/atom;
- ``atom_force_sigma``: per atom, ``sqrt(mean_xyz var)`` (eV/A), the per-component sigma.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.select.calibration import Calibration, fit_calibration
from fntk.select.precision import Precision, accumulate_gram, factorize_precision, posterior_rows

NOISE_GRID = (1e-6, 1e-4, 1e-2, 1e-1, 1.0)
"""Relative noises tried when the calibration also fits the noise of the precision
(``sigma^2 = relative_noise * mean squared training row``, DESIGN.md section 3)."""


@dataclass(frozen=True)
class RowVariances:
    """Uncalibrated posterior variances of the output rows of some structures.

    Attributes
    ----------
    energy : ndarray, shape (n_structures,)
        Variance of the energy row (NaN for a structure without one).
    force : ndarray, shape (n_force_rows,)
        Variance of each force component, atom-major x, y, z.
    force_offsets : ndarray, shape (n_structures + 1,), int64
        Structure ``j`` owns ``force[force_offsets[j]:force_offsets[j + 1]]``.
    source_index : ndarray, shape (n_structures,), int64
    """

    energy: np.ndarray
    force: np.ndarray
    force_offsets: np.ndarray
    source_index: np.ndarray

    @property
    def n_structures(self) -> int:
        return len(self.energy)


def posterior_directions(precision: Precision, rank: int) -> np.ndarray:
    """The ``rank`` directions of largest posterior variance, scaled: ``W`` (d x rank) with
    ``W W^T`` the best rank-``rank`` approximation of ``sigma^2 A^{-1}``.

    A row's variance is then approximated by ``||phi W||^2``, which a model with a linear readout
    computes with ``rank`` backward passes instead of ``d`` (:class:`fntk.pipeline.Calculator`).
    """
    inverse_factor = scipy.linalg.solve_triangular(
        precision.cholesky, np.eye(precision.n_features), lower=True
    )
    covariance = precision.sigma**2 * (inverse_factor.T @ inverse_factor)
    eigenvalues, vectors = np.linalg.eigh(covariance)
    top = np.argsort(eigenvalues)[::-1][:rank]
    return np.asarray(vectors[:, top] * np.sqrt(np.maximum(eigenvalues[top], 0.0)))


def row_variances(
    chunk: FeatureChunk,
    precision: Precision,
    force_row_scale: float = 1.0,
    directions: np.ndarray | None = None,
) -> RowVariances:
    """Posterior variance ``sigma^2 phi A^{-1} phi^T`` of every row of ``chunk``.

    Parameters
    ----------
    chunk : FeatureChunk
    precision : Precision
        Precision of the training set (built with any row weights).
    force_row_scale : float
        Factor the feature map multiplied force rows by (the joint map's ``lambda``); divided
        out so that force variances are in (eV/Angstrom)^2 per unit prior.
    directions : ndarray, shape (d, rank), optional
        :func:`posterior_directions`: use the low-rank variance ``||phi W||^2`` instead.

    Returns
    -------
    RowVariances
    """
    if directions is None:
        rows = posterior_rows(chunk, precision, 1.0, 1.0)
    else:
        rows = np.asarray(chunk.values, dtype=np.float64) @ directions
    variance = np.einsum("ij,ij->i", rows, rows)
    is_force = chunk.row_kind == FORCE_ROW
    owner = np.repeat(np.arange(chunk.n_structures), chunk.rows_per_structure)
    energy = np.full(chunk.n_structures, np.nan)
    energy_rows = chunk.row_kind == ENERGY_ROW
    energy[owner[energy_rows]] = variance[energy_rows]
    counts = np.bincount(owner[is_force], minlength=chunk.n_structures)
    return RowVariances(
        energy=energy,
        force=variance[is_force] / force_row_scale**2,
        force_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        source_index=np.asarray(chunk.source_index, dtype=np.int64),
    )


@dataclass(frozen=True)
class ErrorEstimates:
    """Calibrated predicted errors of some structures.

    Attributes
    ----------
    force_sigma : ndarray, shape (n_structures,)
        Predicted force RMSE over components, eV/Angstrom (NaN without force rows).
    energy_sigma : ndarray, shape (n_structures,)
        Predicted energy error, eV/atom for a per-atom energy row (NaN without one).
    atom_force_sigma : list of ndarray, each shape (n_atoms,)
        Per-atom predicted force-component error, eV/Angstrom.
    component_variance : ndarray, shape (n_force_rows,)
        Calibrated variance of each force component, (eV/Angstrom)^2.
    energy_variance : ndarray, shape (n_structures,)
    """

    force_sigma: np.ndarray
    energy_sigma: np.ndarray
    atom_force_sigma: list[np.ndarray]
    component_variance: np.ndarray
    energy_variance: np.ndarray


def estimates(variances: RowVariances, force: Calibration, energy: Calibration) -> ErrorEstimates:
    """Apply the calibrations to ``variances`` (see :class:`ErrorEstimates`)."""
    component = force.variance(variances.force)
    energy_variance = energy.variance(variances.energy)
    offsets = variances.force_offsets
    force_sigma = np.full(variances.n_structures, np.nan)
    atoms = []
    for j in range(variances.n_structures):
        part = component[offsets[j] : offsets[j + 1]]
        if len(part):
            force_sigma[j] = np.sqrt(part.mean())
        atoms.append(np.sqrt(part.reshape(-1, 3).mean(axis=1)) if len(part) else part)
    return ErrorEstimates(
        force_sigma=force_sigma,
        energy_sigma=np.sqrt(energy_variance),
        atom_force_sigma=atoms,
        component_variance=component,
        energy_variance=energy_variance,
    )


@dataclass
class ErrorModel:
    """Training precision plus calibrations: predicted errors for any structure's features.

    Parameters (constructor)
    ------------------------
    force_row_scale : float
        The feature map's force-row factor (joint ``lambda``), divided out of force variances.
    relative_noise : float
        Noise of the precision (``select.relative_noise``), until :meth:`calibrate` refits it.
    noise_grid : sequence of float
        Relative noises :meth:`calibrate` chooses from by likelihood (empty: keep
        ``relative_noise``).
    rank : int or None
        Use the ``rank`` directions of largest posterior variance
        (:func:`posterior_directions`) instead of the full posterior.
    """

    force_row_scale: float = 1.0
    relative_noise: float = 1e-6
    noise_grid: Sequence[float] = NOISE_GRID
    rank: int | None = None
    precision_: Precision | None = field(default=None, init=False)
    force_calibration_: Calibration = field(default_factory=Calibration, init=False)
    energy_calibration_: Calibration = field(default_factory=Calibration, init=False)
    _gram: tuple[np.ndarray, int, int] | None = field(default=None, init=False, repr=False)

    def fit(self, train: FeatureChunk) -> ErrorModel:
        """Accumulate the precision of the training set (rows weighted 1: the feature map
        already carries the loss weights)."""
        gram, n_structures, n_rows, _ = accumulate_gram([train], 1.0, 1.0)
        assert gram is not None
        self._gram = (gram, n_structures, n_rows)
        self.precision_ = self._precision(self.relative_noise)
        self.force_calibration_ = Calibration()
        self.energy_calibration_ = Calibration()
        return self

    def add(self, chunk: FeatureChunk) -> ErrorModel:
        """The model after also labelling the structures of ``chunk`` (calibration kept)."""
        if self._gram is None:
            raise ValueError("fit the model before adding structures")
        gram, n_structures, n_rows = self._gram
        extra, n_new, rows_new, _ = accumulate_gram([chunk], 1.0, 1.0)
        out = ErrorModel(self.force_row_scale, self.relative_noise, self.noise_grid, self.rank)
        if extra is not None:
            gram = gram + extra
        out._gram = (gram, n_structures + n_new, n_rows + rows_new)
        # sigma is kept: it is the model's noise, not a function of how many labels it has.
        assert self.precision_ is not None
        out.precision_ = factorize_precision(
            gram,
            n_structures + n_new,
            n_rows + rows_new,
            sigma=self.precision_.sigma,
            relative_noise=self.relative_noise,
            jitter_tries=8,
        )
        out.force_calibration_ = self.force_calibration_
        out.energy_calibration_ = self.energy_calibration_
        return out

    def calibrate(
        self,
        chunk: FeatureChunk,
        force_errors: Sequence[np.ndarray],
        energy_errors: np.ndarray | None,
    ) -> ErrorModel:
        """Fit the noise of the precision (from :attr:`noise_grid`), then the force and energy
        calibrations, by likelihood on a labelled calibration set.

        Parameters
        ----------
        chunk : FeatureChunk
            Features of the calibration structures.
        force_errors : sequence of ndarray, each (n_atoms, 3)
            Model minus reference forces, eV/Angstrom; NaN rows (e.g. fixed atoms) are skipped.
        energy_errors : ndarray, shape (n_structures,), or None
            Model minus reference energy per atom, eV/atom.
        """
        errors = np.concatenate([np.asarray(f, dtype=np.float64).ravel() for f in force_errors])
        best: tuple[float, float, Calibration] | None = None
        for noise in self.noise_grid or (self.relative_noise,):
            precision = self._precision(noise)
            variances = row_variances(
                chunk, precision, self.force_row_scale, self._directions(precision)
            )
            fitted = fit_calibration(variances.force, errors)
            if best is None or fitted.mean_nll < best[1]:
                best = (noise, fitted.mean_nll, fitted)
        assert best is not None
        self.relative_noise, _, self.force_calibration_ = best
        self.precision_ = self._precision(self.relative_noise)
        if energy_errors is not None:
            variances = self.variances(chunk)
            if np.isfinite(variances.energy).all():
                self.energy_calibration_ = fit_calibration(variances.energy, energy_errors)
        return self

    def variances(self, chunk: FeatureChunk) -> RowVariances:
        """Uncalibrated row variances of ``chunk`` under the current precision."""
        if self.precision_ is None:
            raise ValueError("fit the model on a training set first")
        return row_variances(
            chunk, self.precision_, self.force_row_scale, self._directions(self.precision_)
        )

    def directions(self) -> np.ndarray | None:
        """:func:`posterior_directions` of the current precision, or ``None`` without a rank."""
        if self.precision_ is None:
            raise ValueError("fit the model on a training set first")
        return self._directions(self.precision_)

    def _directions(self, precision: Precision) -> np.ndarray | None:
        return None if self.rank is None else posterior_directions(precision, self.rank)

    def estimate(self, chunk: FeatureChunk) -> ErrorEstimates:
        """Calibrated predicted errors of the structures of ``chunk``."""
        return estimates(self.variances(chunk), self.force_calibration_, self.energy_calibration_)

    def summary(self) -> dict[str, object]:
        """JSON-ready record of the fitted values."""
        precision = self.precision_
        return {
            "relative_noise": self.relative_noise,
            "sigma": None if precision is None else precision.sigma,
            "n_train_structures": None if precision is None else precision.n_train_structures,
            "force_row_scale": self.force_row_scale,
            "rank": self.rank,
            "force_calibration": self.force_calibration_.as_dict(),
            "energy_calibration": self.energy_calibration_.as_dict(),
            "calibrated": self.force_calibration_.fitted,
        }

    def _precision(self, relative_noise: float) -> Precision:
        assert self._gram is not None
        gram, n_structures, n_rows = self._gram
        return factorize_precision(
            gram, n_structures, n_rows, sigma=None, relative_noise=relative_noise, jitter_tries=8
        )
