"""Model predictions attached to structures (what ``fntk predict`` and the demo write).

Predictions are stored under their own keys, ``fntk_energy`` (``atoms.info``) and
``fntk_forces`` (``atoms.arrays``), never as a calculator: extended XYZ writes a calculator as
``energy=``/``forces``, which every reader (fntk included) takes for reference labels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from fntk.errors import InputError
from fntk.io import StructureChunk
from fntk.models import ModelBackend

ENERGY_KEY = "fntk_energy"
"""``atoms.info`` key of the predicted energy (eV)."""
FORCES_KEY = "fntk_forces"
"""``atoms.arrays`` key of the predicted forces (eV/Angstrom)."""

BYTES_PER_ATOM = 64 * 1024
"""Working memory of a forward plus force pass per atom (node features)."""
BYTES_PER_EDGE = 104 * 1024
"""Working memory per directed edge within the cutoff (messages, spherical harmonics, their
gradients). With ``BYTES_PER_ATOM`` this gives 4.5 MB per atom of fcc Cu at SevenNet-0's 5 A
cutoff (42 edges per atom), the peak-RSS slope measured for SevenNet-0 on CPU in float32
between 256 and 864 atoms (1.45 and 4.19 GB above the loaded model)."""


def estimate_bytes(atoms: Atoms, cutoff: float) -> int:
    """Estimated working memory of one structure in a forward and force pass, in bytes.

    Like torch-sim's auto-batcher, the cost is linear in atoms and in edges (neighbour pairs
    within ``cutoff``): ``BYTES_PER_ATOM * n_atoms + BYTES_PER_EDGE * n_edges``.
    """
    n_edges = len(neighbor_list("i", atoms, cutoff, self_interaction=False)) if len(atoms) else 0
    return BYTES_PER_ATOM * len(atoms) + BYTES_PER_EDGE * n_edges


def available_memory_bytes() -> int | None:
    """Free physical memory of this machine (``None`` where the OS does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def plan_batches(
    costs: Sequence[int],
    *,
    batch_size: int,
    max_bytes: int | None,
    files: Sequence[str],
    frames: Sequence[int],
) -> Iterator[list[int]]:
    """Indices of consecutive batches of at most ``batch_size`` structures and ``max_bytes``.

    A structure whose own estimate is above ``max_bytes`` raises :class:`InputError` naming it.
    """
    batch: list[int] = []
    used = 0
    for i, cost in enumerate(costs):
        if max_bytes is not None and cost > max_bytes:
            raise InputError(
                f"structure needs about {cost / 1e9:.2f} GB in prediction, above the "
                f"{max_bytes / 1e9:.2f} GB limit",
                file=files[i],
                index=frames[i],
                hint="raise --max-memory if the machine has it, or leave the structure out",
            )
        if batch and (
            len(batch) == batch_size or (max_bytes is not None and used + cost > max_bytes)
        ):
            yield batch
            batch, used = [], 0
        batch.append(i)
        used += cost
    if batch:
        yield batch


def predict_chunk(
    backend: ModelBackend,
    chunk: StructureChunk,
    *,
    batch_size: int = 16,
    max_bytes: int | None = None,
) -> list[Atoms]:
    """Copies of the chunk's structures carrying the model's energy (eV) and forces (eV/A).

    Provenance goes to ``info`` as ``fntk_source_file``, ``fntk_source_index``,
    ``fntk_model`` (the spec, with the head of a multi-head MACE model) and ``fntk_dtype``; the
    prediction to ``info["fntk_energy"]`` and ``arrays["fntk_forces"]`` (no calculator, so it
    cannot be read back as reference labels). Batches hold at most ``batch_size`` structures and
    ``max_bytes`` of estimated memory (:func:`estimate_bytes`).
    """
    costs = [estimate_bytes(a, backend.cutoff) for a in chunk.structures]
    results: list = [None] * len(chunk)
    for batch in plan_batches(
        costs,
        batch_size=batch_size,
        max_bytes=max_bytes,
        files=chunk.source_files,
        frames=chunk.frame_indices,
    ):
        predicted = backend.predict([chunk.structures[i] for i in batch], batch_size=len(batch))
        for i, result in zip(batch, predicted):
            results[i] = result
    out = []
    for atoms, file, frame, (energy, forces) in zip(
        chunk.structures, chunk.source_files, chunk.frame_indices, results
    ):
        copy = atoms.copy()
        copy.calc = None
        copy.info.update(
            fntk_source_file=file,
            fntk_source_index=frame,
            fntk_model=backend.spec,
            fntk_dtype=str(backend.dtype).removeprefix("torch."),
        )
        copy.info[ENERGY_KEY] = float(energy)
        copy.arrays[FORCES_KEY] = np.asarray(forces.detach().cpu().numpy(), dtype=np.float64)
        out.append(copy)
    return out
