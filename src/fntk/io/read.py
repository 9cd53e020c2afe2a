"""Streaming structures from any file ASE reads, in chunks, with their provenance.

Frames are read lazily, validated one by one, and grouped into :class:`StructureChunk` objects
that remember the source file and frame index of every structure, plus a running global index
over all files (the ``source_index`` of features). Each path is a source spec of
:mod:`fntk.io.formats` (``PATH`` or ``FORMAT[,KEY=VALUE...]:PATH``): published data sets
(OC20, Transition1x, RGD1, ...) go to their registered reader, everything else to
:func:`ase.io.iread`. Input files are only ever opened for reading.
"""

from __future__ import annotations

import glob
import io
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import ase.io
import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io.formats import UnknownFileTypeError

from fntk.errors import InputError
from fntk.io.formats import FORMATS, Source, format_of, parse_source, reader_options
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


def expand_paths(paths: Sequence[str], *, file_format: str | None = None) -> list[str]:
    """Expand globs and data-set folders of source specs, keeping their ``FORMAT:`` prefix.

    Raise :class:`InputError` for a path or pattern that matches nothing, or a folder that no
    format reads. ``file_format`` is the format of specs without a prefix (``None``: guess).
    """
    expanded: list[str] = []
    for spec in paths:
        source = parse_source(spec, file_format)
        path = source.path
        if glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                unknown = _not_found(spec, source)
                if "unknown format" in str(unknown):
                    raise unknown
                raise InputError(f"pattern {path!r} matches no file", hint="check the path")
            for match in matches:
                expanded.extend(_expand_one(source.with_path(match), spec))
        elif not os.path.exists(path):
            raise _not_found(spec, source)
        else:
            expanded.extend(_expand_one(source, spec))
    if not expanded:
        raise InputError("no input files given")
    return expanded


def _not_found(spec: str, source: Source) -> InputError:
    """A missing file, or a ``FORMAT:PATH`` spec whose FORMAT is no format (the usual typo)."""
    head, sep, tail = spec.partition(":")
    name = head.split(",")[0]
    if source.format is None and sep and tail and re.fullmatch(r"[A-Za-z][\w.+-]*", name):
        if os.path.exists(tail) or (glob.has_magic(tail) and glob.glob(tail)):
            return InputError(
                f"unknown format {name!r} in {spec!r}",
                hint=f"formats: {', '.join(sorted(FORMATS.names()))} or any ASE format name",
            )
    return InputError("file not found", file=source.path, hint="check the path")


def _expand_one(source: Source, spec: str) -> list[str]:
    if not os.path.isdir(source.path):
        return [source.spec()]
    fmt = format_of(source)
    if fmt is None or fmt.directory_glob is None:
        readers = [
            f"{f.name} ({f.directory_glob})" for f in FORMATS.components() if f.directory_glob
        ]
        raise InputError(
            "is a directory, not a structure file",
            file=source.path,
            hint=f"folders are read by: {', '.join(readers)}",
        )
    shards = sorted(glob.glob(os.path.join(source.path, fmt.directory_glob)))
    if not shards:
        raise InputError(
            f"folder holds no {fmt.directory_glob} files", file=source.path, hint="check the path"
        )
    named = Source(source.path, fmt.name, source.options)
    return [named.with_path(shard).spec() for shard in shards]


def iter_frames(
    paths: Sequence[str],
    *,
    index: str = ":",
    file_format: str | None = None,
    species: frozenset[int] | None = None,
    min_distance: float = MIN_DISTANCE_ANGSTROM,
) -> Iterator[tuple[str, int, Atoms]]:
    """Yield ``(file, frame_index, atoms)`` for every frame of every file, validated.

    ``file`` is the source spec of the file (its path, prefixed by ``FORMAT:`` when explicit).
    """
    frames = iter_frames_at(
        paths, index=index, file_format=file_format, species=species, min_distance=min_distance
    )
    for path, frame, atoms, _ in frames:
        yield path, frame, atoms


def iter_frames_at(
    paths: Sequence[str],
    *,
    index: str = ":",
    file_format: str | None = None,
    species: frozenset[int] | None = None,
    min_distance: float = MIN_DISTANCE_ANGSTROM,
) -> Iterator[tuple[str, int, Atoms, int | None]]:
    """:func:`iter_frames` with each frame's byte offset in its file, for :func:`read_frame_at`
    (``None`` where the format has no random access: all but (extended) XYZ files)."""
    for path in expand_paths(paths, file_format=file_format):
        n_read = 0
        offsets: list[int] = []
        for frame, atoms in enumerate(_iread(path, index, file_format, offsets)):
            validate_structure(
                atoms, file=path, index=frame, species=species, min_distance=min_distance
            )
            n_read += 1
            offset = offsets[frame] if index == ":" and frame < len(offsets) else None
            yield path, frame, atoms, offset
        if n_read == 0:
            raise InputError("file holds no structures", file=path, hint="check the file")


def read_frame_at(path: str, offset: int) -> Atoms:
    """The (extended) XYZ frame that starts at byte ``offset`` of ``path``, read alone
    (offsets from :func:`iter_frames_at`; not validated again)."""
    with open(parse_source(path).path, "rb") as handle:
        handle.seek(offset)
        header = handle.readline()
        lines = [header] + [handle.readline() for _ in range(int(header.split()[0]) + 1)]
    text = b"".join(lines).decode("utf-8", errors="replace")
    atoms = ase.io.read(io.StringIO(text), format="extxyz")
    assert isinstance(atoms, Atoms)  # one frame, read with the default index
    return atoms


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
    """Number of frames in ``paths`` (for progress totals; data-set readers count cheaply)."""
    total = 0
    for spec in expand_paths(paths, file_format=file_format):
        source = parse_source(spec, file_format)
        fmt = format_of(source)
        if fmt is not None and fmt.count is not None:
            total += fmt.count(source.path, **reader_options(fmt, source))
        else:
            total += sum(1 for _ in _iread(spec, ":", file_format))
    return total


def _chunk(frames: list[tuple[str, int, Atoms]], start: int) -> StructureChunk:
    return StructureChunk(
        structures=[a for _, _, a in frames],
        source_files=[f for f, _, _ in frames],
        frame_indices=[i for _, i, _ in frames],
        global_indices=np.arange(start, start + len(frames), dtype=np.int64),
    )


def _iread(
    spec: str, index: str, file_format: str | None, offsets: list[int] | None = None
) -> Iterator[Atoms]:
    """Frames of one source spec: its registered reader, else ``ase.io.iread``.

    ASE's many exception types become one :class:`InputError`. ``offsets``, when given, is
    filled with the byte offset of every frame of an (extended) XYZ file.
    """
    source = parse_source(spec, file_format)
    fmt = format_of(source)
    if fmt is not None:
        frames = fmt.read(source.path, **reader_options(fmt, source))
        yield from _slice(frames, index, spec)
        return
    if source.options:
        raise InputError(
            f"ASE format {source.format!r} takes no reader options", file=spec, hint="drop them"
        )
    path = source.path
    check_readable(path)
    frame = 0
    try:
        if source.format in (None, "extxyz", "xyz") and path.lower().endswith((".xyz", ".extxyz")):
            found = check_xyz_columns(path)
            if offsets is not None:
                offsets.extend(found)
        for atoms in ase.io.iread(path, index=index, format=source.format):
            yield atoms
            frame += 1
    except InputError:
        raise
    except UnknownFileTypeError as exc:
        raise InputError(
            f"ASE cannot tell the file format ({exc})",
            file=path,
            hint="use a known extension (.xyz, .extxyz, .traj, .db, ...) or write FORMAT:PATH",
        ) from None
    except OSError as exc:
        if exc.errno is not None:  # the system's error; ASE's XYZError is an errno-less OSError
            raise InputError(
                f"cannot read the file ({exc.strerror or type(exc).__name__})",
                file=path,
                hint="check its permissions and the disk it is on",
            ) from None
        raise _unparsable(exc, path, frame) from None
    except (ValueError, KeyError, IndexError, StopIteration, AssertionError) as exc:
        # ASE's readers raise all of these on bad content.
        raise _unparsable(exc, path, frame) from None


def _unparsable(exc: Exception, path: str, frame: int) -> InputError:
    return InputError(
        f"cannot parse the file near frame {frame} ({type(exc).__name__}: {exc})",
        file=path,
        hint="check that the file is complete and in the format its extension says",
    )


def check_readable(path: str) -> None:
    """Raise :class:`InputError` for a file that cannot be read or is empty (a folder passes:
    data-set readers take folders)."""
    if not os.path.isfile(path):
        return
    try:
        with open(path, "rb") as handle:
            first = handle.read(1)
    except OSError as exc:
        raise InputError(
            f"cannot read the file ({exc.strerror or type(exc).__name__})",
            file=path,
            hint="check its permissions and the disk it is on",
        ) from None
    if not first:
        raise InputError("file is empty", file=path, hint="check the path, or remove the file")


def _slice(frames: Iterator[Atoms], index: str, spec: str) -> Iterator[Atoms]:
    """ASE-style ``index`` (``":"``, ``"5"``, ``"a:b:c"``, non-negative) on a reader's stream."""
    if index == ":":
        yield from frames
        return
    try:
        parts = [int(p) if p else None for p in index.split(":")]
    except ValueError:
        parts = [-1]
    if any(p is not None and p < 0 for p in parts) or len(parts) > 3:
        raise InputError(
            f"index {index!r} is not supported for this format",
            file=spec,
            hint="use ':' or non-negative 'start:stop:step'",
        )
    if len(parts) == 1:
        start = parts[0] or 0
        yield from itertools.islice(frames, start, start + 1)
    else:
        yield from itertools.islice(frames, *parts)


_PROPERTIES = re.compile(r"(?:^|\s)Properties=(\S+)", re.IGNORECASE)


def check_xyz_columns(path: str) -> list[int]:
    """Raise :class:`InputError` for an atom line of an (extended) XYZ file with the wrong
    number of columns: ASE ignores extra columns, so a shifted or corrupted line would be read
    silently. Each frame's atom lines must match its ``Properties=`` (or, in plain XYZ, one
    another); a bad atom-count line, a truncated frame and an unknown element symbol are named
    with their line. Returns the byte offset of each frame.
    """
    offsets: list[int] = []
    with open(path, "rb") as handle:
        frame = 0
        line_no = 0
        while True:
            start = handle.tell()
            header = handle.readline().decode("utf-8", errors="replace")
            line_no += 1
            if not header:
                return offsets
            if not header.strip():
                continue
            try:
                n_atoms = int(header.split()[0])
                if n_atoms < 0:
                    raise ValueError(n_atoms)
            except ValueError:
                raise InputError(
                    f"line {line_no}: expected the atom count of a frame, found "
                    f"{header.strip()[:30]!r}",
                    file=path,
                    index=frame,
                    hint="each frame starts with its number of atoms, then a comment line",
                ) from None
            offsets.append(start)
            comment = handle.readline().decode("utf-8", errors="replace")
            line_no += 1
            match = _PROPERTIES.search(comment)
            expected = _property_columns(match.group(1)) if match else None
            symbols_first = match is None or match.group(1).strip("\"'").lower().startswith(
                ("species:s:1", "symbols:s:1")
            )
            for k in range(n_atoms):
                line = handle.readline()
                line_no += 1
                if not line:
                    raise InputError(
                        f"the file ends inside the frame: {k} of its {n_atoms} atom lines",
                        file=path,
                        index=frame,
                        hint="the file is truncated (copy it again) or its atom count is wrong",
                    )
                fields = line.decode("utf-8", errors="replace").split()
                if symbols_first and fields and not _is_element(fields[0]):
                    raise InputError(
                        f"line {line_no}: unknown element symbol {fields[0]!r}",
                        file=path,
                        index=frame,
                        hint="use chemical symbols such as H, C or Cu, or atomic numbers",
                    )
                columns = len(fields)
                if expected is None:
                    expected = columns
                if columns != expected:
                    raise InputError(
                        f"line {line_no} has {columns} columns, expected {expected}",
                        file=path,
                        index=frame,
                        hint="every atom line of a frame needs the same columns (Properties=)",
                    )
            frame += 1


_SYMBOLS = frozenset(chemical_symbols)


def _is_element(token: str) -> bool:
    """A symbol ASE's XYZ readers accept: a chemical symbol (any case) or an atomic number."""
    return token in _SYMBOLS or token.capitalize() in _SYMBOLS or token.isdigit()


def _property_columns(properties: str) -> int | None:
    parts = properties.strip("\"'").split(":")
    try:
        return sum(int(n) for n in parts[2::3])
    except ValueError:
        return None
