"""Precision matrix of the linearised model and the posterior transform of feature blocks.

The training blocks enter the precision ``A = sigma^2 I + sum_t Phi(t)^T W Phi(t)`` (d x d,
float64, DESIGN.md section 3), accumulated one chunk at a time. ``A`` is factorised once,
``A = L L^T``, with a growing diagonal jitter when the factorisation fails (recorded, never
silent). Every later step sees a block only through its posterior transform
``B(x) = sigma W^{1/2} Phi(x) L^{-T}``, one triangular solve per chunk: ``B B^T`` is the
posterior covariance of the block's outputs and ``||B||_F^2`` its posterior variance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fntk.chunk import ENERGY_ROW, FeatureChunk
from fntk.errors import InputError, NumericalError

_JITTER_START = 1e-12
_JITTER_GROWTH = 10.0


@dataclass(frozen=True)
class Precision:
    """Factorised precision matrix ``A`` of the linearised model.

    Attributes
    ----------
    cholesky : ndarray, shape (n_features, n_features), float64
        Lower Cholesky factor ``L`` of ``A + jitter I``.
    sigma : float
        Noise standard deviation (feature units).
    jitter : float
        Diagonal added to ``A`` so that it factorised (0.0 when none was needed).
    n_train_structures : int
        Size of the training set that ``A`` was accumulated from.
    status : tuple of str
        Messages about fallbacks taken (jitter, empty training set).
    """

    cholesky: np.ndarray
    sigma: float
    jitter: float
    n_train_structures: int
    status: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        return self.cholesky.shape[0]


@dataclass(frozen=True)
class PosteriorBlocks:
    """Posterior-transformed blocks ``B(x) = sigma W^{1/2} Phi(x) L^{-T}`` of some structures.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_features), float64
        All rows, stacked like :attr:`FeatureChunk.values`.
    offsets : ndarray, shape (n_structures + 1,), int64
        Structure ``j`` owns ``values[offsets[j]:offsets[j + 1]]``.
    n_atoms : ndarray of int64, shape (n_structures,), or None
        Atom counts (for per-atom kernel normalisation), when known.
    """

    values: np.ndarray
    offsets: np.ndarray
    n_atoms: np.ndarray | None = None

    @property
    def n_structures(self) -> int:
        return len(self.offsets) - 1

    @property
    def rows_per_structure(self) -> np.ndarray:
        return np.diff(self.offsets)


def weighted_rows(chunk: FeatureChunk, energy_weight: float, force_weight: float) -> np.ndarray:
    """Rows of ``W^{1/2} Phi``: each row scaled by the square root of its kind's weight.

    Returns
    -------
    ndarray, shape (n_rows, n_features), float64
    """
    scale = np.where(chunk.row_kind == ENERGY_ROW, np.sqrt(energy_weight), np.sqrt(force_weight))
    return np.asarray(chunk.values, dtype=np.float64) * np.asarray(scale)[:, None]


MAX_FEATURE_MAGNITUDE = 1e100
"""Largest feature value accepted: squares and Gram sums of larger ones overflow float64."""


def check_chunk(chunk: FeatureChunk, n_features: int | None, what: str) -> None:
    """Raise :class:`InputError` for something that is not a :class:`FeatureChunk`, a feature
    width mismatch, non-finite feature rows or values beyond :data:`MAX_FEATURE_MAGNITUDE`."""
    if not isinstance(chunk, FeatureChunk):
        raise InputError(
            f"{what} chunks must be fntk.chunk.FeatureChunk objects, got "
            f"{type(chunk).__module__}.{type(chunk).__qualname__}",
            hint="build them with FeatureChunk(values, offsets, source_index, n_atoms, "
            "row_kind), or pass a list of chunks, not one",
        )
    if n_features is not None and chunk.n_features != n_features:
        raise InputError(
            f"{what} chunk has {chunk.n_features} features, expected {n_features}",
            hint="train and pool features must come from the same feature map",
        )
    finite = np.isfinite(chunk.values).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        owner = int(np.searchsorted(chunk.offsets, row, side="right") - 1)
        raise InputError(
            f"{what} structure with source index {int(chunk.source_index[owner])} has "
            "non-finite (NaN or inf) feature values",
            hint="check the model outputs for this structure or drop it",
        )
    largest = float(np.abs(chunk.values).max()) if chunk.values.size else 0.0
    if largest > MAX_FEATURE_MAGNITUDE:
        row = int(np.argmax(np.abs(chunk.values).max(axis=1)))
        owner = int(np.searchsorted(chunk.offsets, row, side="right") - 1)
        raise InputError(
            f"{what} structure with source index {int(chunk.source_index[owner])} has feature "
            f"values up to {largest:.3g}, beyond {MAX_FEATURE_MAGNITUDE:.0e}, where their "
            "squares overflow",
            hint="rescale the features (the picks do not depend on a common scale)",
        )


def robust_cholesky(matrix: np.ndarray, max_tries: int = 8) -> tuple[np.ndarray, float]:
    """Cholesky factor of a symmetric matrix, adding a growing jitter to the diagonal on failure.

    The first retry adds ``1e-12 * mean(diag(matrix))`` to the diagonal; each further retry
    multiplies the jitter by 10, up to ``max_tries`` retries.

    Parameters
    ----------
    matrix : ndarray, shape (d, d), float64
        Symmetric, positive (semi-)definite matrix; not modified.
    max_tries : int
        Number of jittered retries after the plain factorisation fails.

    Returns
    -------
    cholesky : ndarray, shape (d, d), float64
        Lower factor ``L`` with ``L L^T = matrix + jitter I``.
    jitter : float
        The jitter that was needed (0.0 when the plain factorisation worked).

    Raises
    ------
    NumericalError
        If ``matrix`` has non-finite entries, or the factorisation still fails after
        ``max_tries`` jitters.
    """
    if not np.isfinite(matrix).all():
        raise NumericalError("precision matrix has non-finite entries; cannot factorise it")
    scale = float(np.mean(np.abs(np.diag(matrix)))) if matrix.size else 0.0
    jitter = 0.0
    tried = []
    for attempt in range(max_tries + 1):
        if attempt:
            jitter = (
                (scale if scale > 0.0 else 1.0) * _JITTER_START * _JITTER_GROWTH ** (attempt - 1)
            )
            tried.append(jitter)
        try:
            factor = np.linalg.cholesky(matrix + jitter * np.eye(len(matrix)))
        except np.linalg.LinAlgError:
            continue
        return factor, jitter
    raise NumericalError(
        f"Cholesky factorisation failed even with diagonal jitter up to {max(tried or [0.0]):.3g} "
        f"({len(tried)} retries); the matrix is not positive definite",
    )


def accumulate_gram(
    chunks: Iterable[FeatureChunk], energy_weight: float, force_weight: float
) -> tuple[np.ndarray | None, int, int, list[FeatureChunk]]:
    """Sum ``Phi(t)^T W Phi(t)`` over all training blocks, chunk by chunk.

    Returns
    -------
    gram : ndarray, shape (n_features, n_features), float64, or None
        ``None`` when no chunk was seen (the feature width is then unknown).
    n_structures, n_rows : int
    chunks : list of FeatureChunk
        The chunks seen, in order (the caller decides whether to keep them).
    """
    gram = None
    n_structures = n_rows = 0
    seen = []
    for chunk in chunks:
        check_chunk(chunk, None if gram is None else gram.shape[0], "training")
        rows = weighted_rows(chunk, energy_weight, force_weight)
        gram = rows.T @ rows if gram is None else gram + rows.T @ rows
        n_structures += chunk.n_structures
        n_rows += chunk.n_rows
        seen.append(chunk)
    return gram, n_structures, n_rows, seen


def factorize_precision(
    gram: np.ndarray,
    n_structures: int,
    n_rows: int,
    *,
    sigma: float | None,
    relative_noise: float,
    jitter_tries: int,
) -> Precision:
    """Build and factorise ``A = sigma^2 I + gram``.

    Parameters
    ----------
    gram : ndarray, shape (d, d), float64
        ``sum_t Phi(t)^T W Phi(t)`` (zeros for an empty training set).
    n_structures, n_rows : int
        Training set size; ``n_rows`` sets the feature scale of the relative noise.
    sigma : float or None
        Absolute noise standard deviation; ``None`` for
        ``sigma^2 = relative_noise * trace(gram) / n_rows`` (``relative_noise`` when
        ``n_rows == 0``).
    relative_noise : float
    jitter_tries : int

    Returns
    -------
    Precision
    """
    status = []
    if sigma is None:
        if n_rows:
            scale = float(np.trace(gram)) / n_rows
            if scale <= 0.0:
                raise InputError(
                    "all training feature rows are zero, so they set no feature scale",
                    hint="set an absolute select.sigma in a --config file",
                )
            sigma = float(np.sqrt(relative_noise * scale))
        else:
            sigma = float(np.sqrt(relative_noise))
            status.append(
                f"empty training set: P mode with A = sigma^2 I and sigma^2 = relative_noise = "
                f"{relative_noise:g} (no training rows to set the feature scale; select.sigma in a "
                "--config file sets it)"
            )
    matrix = gram + sigma**2 * np.eye(len(gram))
    cholesky, jitter = robust_cholesky(matrix, jitter_tries)
    if jitter:
        status.append(
            f"precision matrix was not numerically positive definite; added jitter {jitter:.3g} "
            f"to its diagonal (sigma^2 = {sigma**2:.3g})"
        )
    return Precision(
        cholesky=cholesky,
        sigma=sigma,
        jitter=jitter,
        n_train_structures=n_structures,
        status=tuple(status),
    )


def posterior_rows(
    chunk: FeatureChunk, precision: Precision, energy_weight: float, force_weight: float
) -> np.ndarray:
    """Posterior transform ``sigma W^{1/2} Phi L^{-T}`` of every row of a chunk.

    One triangular solve for the whole chunk.

    Returns
    -------
    ndarray, shape (n_rows, n_features), float64
    """
    rows = weighted_rows(chunk, energy_weight, force_weight)
    solved = scipy.linalg.solve_triangular(
        precision.cholesky, rows.T, lower=True, check_finite=False
    )
    return precision.sigma * solved.T


def posterior_blocks(
    chunk: FeatureChunk, precision: Precision, energy_weight: float, force_weight: float
) -> PosteriorBlocks:
    """Posterior blocks ``B(x)`` of all structures of a chunk (see :func:`posterior_rows`)."""
    values = np.ascontiguousarray(posterior_rows(chunk, precision, energy_weight, force_weight))
    return PosteriorBlocks(
        values=values,
        offsets=chunk.offsets.astype(np.int64),
        n_atoms=np.asarray(chunk.n_atoms, dtype=np.int64),
    )
