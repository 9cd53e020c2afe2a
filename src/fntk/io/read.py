"""Streaming structures from any file ASE reads, in chunks, with their provenance.

Frames are read lazily with :func:`ase.io.iread`, validated one by one, and grouped into
:class:`StructureChunk` objects that remember the source file and frame index of every
structure, plus a running global index over all files (the ``source_index`` of features).
Input files are only ever opened for reading.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import ase.io
import numpy as np
from ase import Atoms
from ase.io.formats import UnknownFileTypeError

from fntk.errors import InputError
from fntk.io.validate import MIN_DISTANCE_ANGSTROM, validate_structure


@dataclass(frozen=True)
class StructureChunk:
    """Consecutive structures of a stream.

    Attributes
    ----------
    structures : list of Atoms
    source_files : list of str
        File each structure was read from.
    frame_indices : list of int
        Frame index of each structure within its file.
    global_indices : ndarray, shape (n,), int64
        Running index of each structure over all input files.
    """

    structures: list[Atoms]
    source_files: list[str]
    frame_indices: list[int]
    global_indices: np.ndarray

    def __len__(self) -> int:
        return len(self.structures)


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Expand globs; raise :class:`InputError` for a path or pattern that matches nothing."""
    expanded: list[str] = []
    for path in paths:
        if glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise InputError(f"pattern {path!r} matches no file", hint="check the path")
            expanded.extend(matches)
        elif not os.path.exists(path):
            raise InputError("file not found", file=path, hint="check the path")
        elif os.path.isdir(path):
            raise InputError("is a directory, not a structure file", file=path)
        else:
            expanded.append(path)
    if not expanded:
        raise InputError("no input files given")
    return expanded


def iter_frames(
    paths: Sequence[str],
    *,
    index: str = ":",
    file_format: str | None = None,
    species: frozenset[int] | None = None,
    min_distance: float = MIN_DISTANCE_ANGSTROM,
) -> Iterator[tuple[str, int, Atoms]]:
    """Yield ``(file, frame_index, atoms)`` for every frame of every file, validated."""
    for path in expand_paths(paths):
        n_read = 0
        for frame, atoms in enumerate(_iread(path, index, file_format)):
            validate_structure(
                atoms, file=path, index=frame, species=species, min_distance=min_distance
            )
            n_read += 1
            yield path, frame, atoms
        if n_read == 0:
            raise InputError("file holds no structures", file=path, hint="check the file")


def iter_chunks(
    paths: Sequence[str],
    chunk_size: int,
    *,
    index: str = ":",
    file_format: str | None = None,
    species: frozenset[int] | None = None,
    min_distance: float = MIN_DISTANCE_ANGSTROM,
) -> Iterator[StructureChunk]:
    """Stream the frames of ``paths`` in chunks of at most ``chunk_size`` structures."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    buffer: list[tuple[str, int, Atoms]] = []
    start = 0
    frames = iter_frames(
        paths, index=index, file_format=file_format, species=species, min_distance=min_distance
    )
    for item in frames:
        buffer.append(item)
        if len(buffer) == chunk_size:
            yield _chunk(buffer, start)
            start += len(buffer)
            buffer = []
    if buffer:
        yield _chunk(buffer, start)


def read_structures(paths: Sequence[str], **kwargs) -> StructureChunk:
    """All frames of ``paths`` as one chunk (for small sets: training data, tests)."""
    frames = list(iter_frames(paths, **kwargs))
    return _chunk(frames, 0)


def count_frames(paths: Sequence[str], *, file_format: str | None = None) -> int:
    """Number of frames in ``paths`` (reads every file once; for progress totals)."""
    return sum(sum(1 for _ in _iread(path, ":", file_format)) for path in expand_paths(paths))


def _chunk(frames: list[tuple[str, int, Atoms]], start: int) -> StructureChunk:
    return StructureChunk(
        structures=[a for _, _, a in frames],
        source_files=[f for f, _, _ in frames],
        frame_indices=[i for _, i, _ in frames],
        global_indices=np.arange(start, start + len(frames), dtype=np.int64),
    )


def _iread(path: str, index: str, file_format: str | None) -> Iterator[Atoms]:
    """``ase.io.iread`` with its many exception types turned into one :class:`InputError`."""
    frame = 0
    try:
        for atoms in ase.io.iread(path, index=index, format=file_format):
            yield atoms
            frame += 1
    except UnknownFileTypeError as exc:
        raise InputError(
            f"ASE cannot tell the file format ({exc})",
            file=path,
            hint="use a known extension (.xyz, .extxyz, .traj, .db, ...) or pass the format",
        ) from None
    except (ValueError, KeyError, IndexError, OSError, StopIteration, AssertionError) as exc:
        # ASE's readers raise all of these (and XYZError, a ValueError subclass) on bad content.
        raise InputError(
            f"cannot parse the file near frame {frame} ({type(exc).__name__}: {exc})",
            file=path,
            hint="check that the file is complete and in the format its extension says",
        ) from None
