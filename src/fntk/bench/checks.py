"""Checks of a benchmark's inputs: labels before any work, and what the E0 refit can learn.

:func:`check_labelled_files` reads the first frame of every labelled file, so a pool without
labels is one clear error before the output folder is created or the model loads.
:func:`reference_energy_notes` says, in ``summary.md`` and the log, when the per-element
reference energies (E0s, DESIGN.md section 5) cannot all be learnt: elements of a test split
that no labelled structure holds keep the pretrained model's reference, and a labelled set
whose compositions do not fix every element's E0 gets the least-change (minimum-norm) fit.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from ase.data import chemical_symbols

from fntk.io import expand_paths, iter_frames, read_labels
from fntk.learn.e0 import composition_matrix
from fntk.learn.labelled import LabelledSet


def check_labelled_files(
    files: Sequence[str],
    energy_key: str | None,
    forces_key: str | None,
    *,
    require_forces: bool = True,
) -> None:
    """Raise :class:`~fntk.errors.InputError` when the first frame of a file has no labels."""
    for spec in expand_paths(files):
        for file, index, atoms in itertools.islice(iter_frames([spec]), 1):
            read_labels(
                atoms,
                file=file,
                index=index,
                energy_key=energy_key,
                forces_key=forces_key,
                require_forces=require_forces,
            )


def _symbols(numbers: Iterable[int]) -> str:
    return ", ".join(chemical_symbols[z] for z in sorted(numbers))


def _elements(structures: LabelledSet | None) -> set[int]:
    if structures is None:
        return set()
    return {int(z) for atoms in structures.structures for z in atoms.numbers}


def reference_energy_notes(
    init: LabelledSet,
    pool: LabelledSet,
    tests: Mapping[str, LabelledSet],
    e0_reference: LabelledSet | None = None,
) -> list[str]:
    """Sentences for ``summary.md`` on the E0s the labelled data cannot fix (none: all fine)."""
    notes = []
    labelled = _elements(init) | _elements(pool) | _elements(e0_reference)
    for name, split in tests.items():
        unseen = _elements(split) - labelled
        if unseen:
            notes.append(
                f"test split {name}: element(s) {_symbols(unseen)} occur in no initial, pool "
                "or --e0-reference structure, so their reference energy (E0) keeps the "
                "pretrained model's value and this split's energy errors are not learnable "
                "here (its force errors are)"
            )
    fitted = [*init.structures, *(e0_reference.structures if e0_reference else [])]
    species = sorted({int(z) for atoms in fitted for z in atoms.numbers})
    counts = composition_matrix([atoms.numbers for atoms in fitted], species)
    rank = int(np.linalg.matrix_rank(counts)) if len(fitted) else 0
    if rank < len(species):
        # element k's E0 is fixed iff the unit vector e_k lies in the row space of the counts
        in_row_space = np.diag(np.linalg.pinv(counts) @ counts)
        loose = [z for z, p in zip(species, in_row_space, strict=True) if p < 1 - 1e-9]
        notes.append(
            f"the initial labelled set ({len(init)} structures"
            f"{' and --e0-reference' if e0_reference else ''}) fixes only {rank} independent "
            f"combination(s) of the reference energies (E0) of the {len(species)} elements "
            f"{_symbols(species)}; those of {_symbols(loose)} are not fixed separately: the "
            "first round's E0 refit takes the smallest change that fits the labels, and energy "
            "errors before the pool's labels arrive can be large (add --e0-reference "
            "structures of single elements, or initial structures of other compositions)"
        )
    return notes
