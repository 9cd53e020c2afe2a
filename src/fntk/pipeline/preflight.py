"""The first read of a selection's inputs: every check and count that needs no model.

:func:`scan_inputs` reads every pool and training structure once, before the output folder
exists and before the model loads, and keeps a few numbers per pool structure
(:class:`InputScan`): its file, frame and byte offset (so the picks are fetched by random
access), whether it is new, a copy of a training structure or a repeat of an earlier pool
structure (the one place fingerprints are sorted), the picks-vs-pool profile, the elements
and the reference atom count of the joint map's lambda. Target structures (``--target``) are
read and validated here too, and counted. A bad frame, ``n = 0`` or an ``n`` the
pool cannot meet is one clear error here. The feature pass is the second and last full read.
Reading is cheap next to featurising (milliseconds against seconds per structure).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fntk.errors import InputError
from fntk.io import duplicate_key, expand_paths, iter_frames, iter_frames_at
from fntk.io.validate import unsupported_elements_error
from fntk.pipeline.options import RunOptions
from fntk.pipeline.uncertainty import CalibrationSet, read_calibration
from fntk.report.profile import StructureProfile

REFERENCE_SAMPLE = 1000
"""Pool structures (the first ones, in file order) whose mean atom count sets the joint map's
lambda (:func:`fntk.pipeline.job.with_loss_weights`)."""


@dataclass
class InputScan:
    """What the first read of the inputs learned; per pool structure, indexed by its running
    source index (all files, every frame).

    Attributes
    ----------
    pool_files, train_files, target_files : list of str
    n_train, n_target : int
    file_of, frame_of : list of int
        Position in ``pool_files`` and frame index in that file.
    offset_of : list of int or None
        Byte offset of the frame in its file (None: no random access for that format).
    new : list of bool
        Neither in the training set nor a repeat of an earlier pool structure.
    train_copies, pool_repeats : list of dict
        The excluded structures (``source_file``, ``source_index``; repeats with ``copy_of``).
    profile : StructureProfile
        Atom counts, largest reference forces and tags (the report's picks-vs-pool table).
    element_sets : list of frozenset of int
        The distinct element sets of the pool structures.
    elements_of : list of int
        Position in ``element_sets`` of each pool structure's elements (for
        :meth:`supported`).
    element_counts : Counter
        Number of pool structures holding each atomic number.
    reference_n_atoms : float
        Mean atom count of the first :data:`REFERENCE_SAMPLE` pool structures.
    calibration : CalibrationSet or None
        The labelled ``options.calibrate`` structures without their training-set copies
        (the stopping signal's calibration), when given.
    """

    pool_files: list[str]
    train_files: list[str]
    target_files: list[str] = field(default_factory=list)
    n_train: int = 0
    n_target: int = 0
    file_of: list[int] = field(default_factory=list)
    frame_of: list[int] = field(default_factory=list)
    offset_of: list[int | None] = field(default_factory=list)
    new: list[bool] = field(default_factory=list)
    train_copies: list[dict[str, object]] = field(default_factory=list)
    pool_repeats: list[dict[str, object]] = field(default_factory=list)
    profile: StructureProfile = field(default_factory=StructureProfile)
    element_sets: list[frozenset[int]] = field(default_factory=list)
    elements_of: list[int] = field(default_factory=list)
    element_counts: Counter[int] = field(default_factory=Counter)
    reference_n_atoms: float = 1.0
    calibration: CalibrationSet | None = None
    first_with: dict[int, tuple[int, str, int, frozenset[int]]] = field(default_factory=dict)
    """Per atomic number, the first structure holding it: (split order, file, frame,
    its elements); pool, then training, then target, then calibration structures."""

    @property
    def n_pool(self) -> int:
        """Pool structures, every frame."""
        return len(self.new)

    @property
    def n_new(self) -> int:
        """Pool structures that can be picked."""
        return sum(self.new)

    def check_species(self, species: frozenset[int]) -> None:
        """Raise the error the first structure with an element outside ``species`` gets from
        :func:`fntk.io.validate_structure` (pool first, then training set)."""
        firsts = [self.first_with[z] for z in self.first_with if z not in species]
        if firsts:
            _, file, frame, elements = min(firsts)
            raise unsupported_elements_error(sorted(elements - species), file, frame)

    def supported(self, species: frozenset[int] | None) -> np.ndarray:
        """Whether each pool structure has only elements of ``species`` (None: all do),
        shape (n_pool,), bool."""
        if species is None:
            return np.ones(self.n_pool, dtype=bool)
        known = np.array([elements <= species for elements in self.element_sets], dtype=bool)
        return known[np.asarray(self.elements_of, dtype=np.int64)]

    def source(self, index: int) -> tuple[str, int]:
        """(file, frame) of pool structure ``index``."""
        return self.pool_files[self.file_of[index]], self.frame_of[index]


def scan_inputs(pool: Sequence[str], train: Sequence[str], options: RunOptions) -> InputScan:
    """Read and validate every structure of ``pool``, ``train`` and ``options.target`` once;
    see :class:`InputScan`.

    Raises
    ------
    InputError
        A file or frame that cannot be read or given to a model; target files without a
        structure; ``options.n == 0``; or ``options.n`` larger than the new pool structures
        (including a pool that is entirely training structures). All three cases of ``n`` are
        the same error, exit status 1 in the CLI. A calibration set (``options.calibrate``)
        without labels or entirely in the training set
        (:func:`~fntk.pipeline.uncertainty.read_calibration`).
    """
    if options.n == 0:
        raise InputError("asked for n=0: nothing to pick", hint="pass -n 1 or more")
    target = options.target
    if target:
        check_target_selector(options.select.method)
    scan = InputScan(
        expand_paths(pool),
        expand_paths(train) if train else [],
        expand_paths(target) if target else [],
    )
    train_prints = set()
    for file, frame, atoms in iter_frames(scan.train_files) if scan.train_files else ():
        train_prints.add(duplicate_key(atoms))
        _note_elements(scan, (1, scan.n_train), file, frame, atoms.numbers)
        scan.n_train += 1
    first_of: dict[str, dict[str, object]] = {}
    set_of: dict[frozenset[int], int] = {}
    n_atoms_sum = 0
    for index, (file, frame, atoms, offset) in enumerate(iter_frames_at(scan.pool_files)):
        if not scan.file_of or scan.pool_files[scan.file_of[-1]] != file:
            scan.file_of.append(scan.pool_files.index(file))
        else:
            scan.file_of.append(scan.file_of[-1])
        scan.frame_of.append(frame)
        scan.offset_of.append(offset)
        scan.profile.add(atoms)
        elements = _note_elements(scan, (0, index), file, frame, atoms.numbers)
        scan.element_counts.update(elements)
        if elements not in set_of:
            set_of[elements] = len(scan.element_sets)
            scan.element_sets.append(elements)
        scan.elements_of.append(set_of[elements])
        if index < REFERENCE_SAMPLE:
            n_atoms_sum += len(atoms)
        here = {"source_file": file, "source_index": frame}
        fingerprint = duplicate_key(atoms)
        if fingerprint in train_prints:
            scan.train_copies.append(here)
        elif fingerprint in first_of:
            scan.pool_repeats.append({**here, "copy_of": first_of[fingerprint]})
        else:
            first_of[fingerprint] = here
        scan.new.append(fingerprint not in train_prints and first_of[fingerprint] is here)
    scan.reference_n_atoms = n_atoms_sum / min(scan.n_pool, REFERENCE_SAMPLE)
    for file, frame, atoms in iter_frames(scan.target_files) if scan.target_files else ():
        _note_elements(scan, (2, scan.n_target), file, frame, atoms.numbers)
        scan.n_target += 1
    if scan.target_files and not scan.n_target:
        raise InputError(
            "the target files hold no structure",
            file=", ".join(scan.target_files),
            hint="pass structures like those you will simulate with --target",
        )
    check_n(options.n, scan)
    if options.calibrate:
        scan.calibration = read_calibration(options.calibrate, train_prints)
        labelled = scan.calibration.labelled
        for position, atoms in enumerate(labelled.structures):
            where = (labelled.source_files[position], labelled.frame_indices[position])
            _note_elements(scan, (2, position), *where, atoms.numbers)
    return scan


def check_target_selector(method: str) -> None:
    """Raise :class:`InputError` unless selector ``method`` covers a set (target structures
    stand in for the pool only there)."""
    from fntk.select import selectors

    registry = selectors()
    if getattr(registry.get(method), "covers", False):
        return
    names = [name for name in registry.names() if getattr(registry.get(name), "covers", False)]
    raise InputError(
        f"--target needs a covering selector, not {method!r}",
        hint=f"use --selector {' or '.join(names)}, or drop --target",
    )


def _note_elements(
    scan: InputScan, order: tuple[int, int], file: str, frame: int, numbers: np.ndarray
) -> frozenset[int]:
    """Record the structure as the first holding each of its new elements; its elements."""
    elements = frozenset(numbers.tolist())
    for z in elements - scan.first_with.keys():
        scan.first_with[z] = (order[0] * 2**62 + order[1], file, frame, elements)
    return elements


def check_n(n: int, scan: InputScan) -> None:
    """Raise :class:`InputError` when the pool holds fewer than ``n`` new structures (the one
    check of ``n`` against the inputs)."""
    n_new = scan.n_new
    if n <= n_new:
        return
    excluded = []
    if scan.train_copies:
        excluded.append(f"{len(scan.train_copies)} already in the training set")
    if scan.pool_repeats:
        excluded.append(f"{_count(len(scan.pool_repeats), 'repeat')} of an earlier pool structure")
    held = _count(n_new, "structure")
    if excluded:
        held = f"{_count(n_new, 'new structure')} ({scan.n_pool} in all, {', '.join(excluded)})"
    raise InputError(
        f"asked for n={n} but the pool holds only {held}",
        file=", ".join(scan.pool_files),
        hint="lower -n or add pool files",
    )


def count_frames(files: Sequence[str]) -> tuple[int, float]:
    """Frames of ``files`` (each read and validated) and the mean atom count of the first
    :data:`REFERENCE_SAMPLE`: the one read before ``fntk features``' feature pass."""
    n_frames, n_atoms_sum = 0, 0
    for _, _, atoms in iter_frames(files):
        if n_frames < REFERENCE_SAMPLE:
            n_atoms_sum += len(atoms)
        n_frames += 1
    return n_frames, n_atoms_sum / min(n_frames, REFERENCE_SAMPLE) if n_frames else 1.0


def check_selection_inputs(pool: Sequence[str], train: Sequence[str], options: RunOptions) -> int:
    """Validate every structure of ``pool`` and ``train``; return the number of new pool
    structures (:func:`scan_inputs`)."""
    return scan_inputs(pool, train, options).n_new


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")
