"""Model predictions attached to structures (what ``fntk predict`` and the demo write)."""

from __future__ import annotations

from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.io import StructureChunk
from fntk.models import ModelBackend


def predict_chunk(
    backend: ModelBackend, chunk: StructureChunk, *, batch_size: int = 16
) -> list[Atoms]:
    """Copies of the chunk's structures carrying the model's energy (eV) and forces (eV/A).

    Provenance goes to ``info`` as ``fntk_source_file``, ``fntk_source_index``,
    ``fntk_model`` (the spec, with the head of a multi-head MACE model) and ``fntk_dtype``; the
    prediction is attached as a single-point calculator (``energy=`` and ``forces`` in XYZ).
    """
    results = backend.predict(chunk.structures, batch_size=batch_size)
    out = []
    for atoms, file, frame, (energy, forces) in zip(
        chunk.structures, chunk.source_files, chunk.frame_indices, results
    ):
        copy = atoms.copy()
        copy.info.update(
            fntk_source_file=file,
            fntk_source_index=frame,
            fntk_model=backend.spec,
            fntk_dtype=str(backend.dtype).removeprefix("torch."),
        )
        copy.calc = SinglePointCalculator(copy, energy=energy, forces=forces.numpy())
        out.append(copy)
    return out
