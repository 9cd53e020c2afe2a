"""Helpers shared by the feature maps: batching, stacking per-structure blocks, dtype checks.

Maps compute blocks batch by batch (:func:`iter_batches`); :func:`assemble_chunk` stacks them
into the ragged
:class:`~fntk.chunk.FeatureChunk` contract, whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
from ase import Atoms

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.errors import CapabilityError
from fntk.features.options import FeatureMapOptions, JointNTKOptions
from fntk.models.base import ModelBackend

Rows = TypeVar("Rows", bound=Any)


def check_backend_dtype(backend: ModelBackend, dtype: str) -> None:
    """Refuse a backend whose dtype differs from the options' (stored features would lie)."""
    if str(backend.dtype).removeprefix("torch.") != dtype:
        raise CapabilityError(
            f"the feature options ask for dtype {dtype} but the model runs in {backend.dtype}; "
            "load the model with the same dtype"
        )


def iter_batches(
    structures: Sequence[Atoms], batch_size: int, max_batch_atoms: int
) -> Iterator[Sequence[Atoms]]:
    """Consecutive batches of at most ``batch_size`` structures and ``max_batch_atoms`` atoms.

    A structure larger than ``max_batch_atoms`` forms a batch of its own. Order is kept, so the
    blocks of the batches concatenate in the order of ``structures``.
    """
    start, n_atoms = 0, 0
    for stop, atoms in enumerate(structures):
        full = stop - start == batch_size or n_atoms + len(atoms) > max_batch_atoms
        if stop > start and full:
            yield structures[start:stop]
            start, n_atoms = stop, 0
        n_atoms += len(atoms)
    if start < len(structures):
        yield structures[start:]


def weigh_rows(
    energy: Rows, forces: Rows | None, n_atoms: Any, options: FeatureMapOptions
) -> tuple[Rows, Rows | None]:
    """Rows weighed as the map of ``options`` weighs them (DESIGN.md section 2).

    The energy rows are divided by the atom count ``n_atoms`` with ``per_atom``; the force rows
    are multiplied by lambda (``force_weight``) in the joint map. Works on NumPy arrays and torch
    tensors alike (one structure, or a batch with ``n_atoms`` of shape (B, 1)).
    """
    if getattr(options, "per_atom", False):
        energy = energy / n_atoms
    if forces is not None and isinstance(options, JointNTKOptions):
        forces = forces * options.force_weight
    return energy, forces


def stack_block(
    energy: np.ndarray | None, forces: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """One structure's block: its energy row (if any) on top of its 3N force rows (if any).

    Parameters
    ----------
    energy : ndarray, shape (d,) or (1, d), or None
    forces : ndarray, shape (3N, d), or None

    Returns
    -------
    block : ndarray, shape (m, d)
    kinds : ndarray of int8, shape (m,)
        ``ENERGY_ROW`` then ``FORCE_ROW`` per row.
    """
    parts, kinds = [], []
    if energy is not None:
        parts.append(np.reshape(energy, (1, -1)))
        kinds.append(np.full(1, ENERGY_ROW))
    if forces is not None:
        parts.append(forces)
        kinds.append(np.full(len(forces), FORCE_ROW))
    return np.concatenate(parts), np.concatenate(kinds)


def assemble_chunk(
    blocks: list[np.ndarray],
    kinds: list[np.ndarray],
    structures: Sequence[Atoms],
    source_index: Sequence[int] | np.ndarray | None,
) -> FeatureChunk:
    """Stack per-structure blocks into a :class:`FeatureChunk`.

    Parameters
    ----------
    blocks : list of ndarray, each shape (m_j, n_features)
        Block Phi of each structure, in the order of ``structures``.
    kinds : list of ndarray, each shape (m_j,), int8
        Row kind (``ENERGY_ROW``/``FORCE_ROW``) of each block's rows.
    structures : sequence of ase.Atoms
        The structures (for their atom counts).
    source_index : array-like of int, shape (n_structures,), optional
        Global pool index of each structure; default ``0..n-1``.
    """
    if source_index is None:
        source_index = np.arange(len(structures))
    sizes = [len(b) for b in blocks]
    return FeatureChunk(
        values=np.ascontiguousarray(np.concatenate(blocks)),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        source_index=np.asarray(source_index, dtype=np.int64),
        n_atoms=np.array([len(a) for a in structures], dtype=np.int64),
        row_kind=np.concatenate(kinds).astype(np.int8),
    )
