"""One registry of the input formats fntk reads beyond ASE's, and the ``FORMAT:PATH`` syntax.

Modelled on ASE's ``ase.io.formats.ioformats``: each :class:`InputFormat` is one
:func:`register_format` call with a name, the file name endings it claims, a reader
``read(path, **options) -> Iterator[Atoms]`` and a one-line help. A second format with the same
name, or a claim on an ending that another format already holds without a content test
(``sniff``), fails at registration.

Every command that takes structure files (``select``, ``features``, ``predict``, ``bench``, the
Python functions of :mod:`fntk.io.read`) accepts, for each file, a *source spec*::

    PATH                                   format from the name (and content, for .h5/.extxyz)
    FORMAT:PATH                            explicit format (a name below, or any ASE format)
    FORMAT,KEY=VALUE[,KEY=VALUE...]:PATH   with reader options

for example ``transition1x,split=test:transition1x.h5`` or ``oc20-lmdb:s2ef/val_id/``. Files
that no registered format claims are read by ASE (``ase.io.iread``), as before.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ase import Atoms

from fntk.errors import InputError
from fntk.registry import Entry, Registry

Reader = Callable[..., Iterator[Atoms]]


@dataclass(frozen=True)
class InputFormat:
    """A registered input format.

    Attributes
    ----------
    name : str
        What users type before the colon (``transition1x``).
    extensions : tuple of str
        File name endings it claims (``.extxyz.xz``), longest match first at lookup.
    read : callable
        ``read(path, **options)`` yielding labelled Atoms with provenance in ``info``.
    help : str
        One line, shown by ``describe_formats``.
    count : callable or None
        ``count(path, **options)``: number of frames without building them (default: iterate).
    sniff : callable or None
        ``sniff(path) -> bool``: content test, for endings several formats (or ASE) share.
    directory_glob : str or None
        A folder given as the path is read as its files matching this pattern, sorted
        (fairchem ships LMDB shards as a folder of ``*.lmdb`` files).
    """

    name: str
    extensions: tuple[str, ...]
    read: Reader
    help: str
    count: Callable[..., int] | None = None
    sniff: Callable[[str], bool] | None = None
    directory_glob: str | None = None
    options: dict[str, type] = field(default_factory=dict)


FORMATS: Registry[InputFormat] = Registry("input format")
"""The registry: format name -> :class:`InputFormat`."""


def register_format(
    name: str,
    extensions: tuple[str, ...],
    read: Reader,
    help: str,
    *,
    count: Callable[..., int] | None = None,
    sniff: Callable[[str], bool] | None = None,
    directory_glob: str | None = None,
) -> InputFormat:
    """Add a format; its reader's keyword-only parameters are its options (typed by default).

    Raises
    ------
    ValueError
        The name is taken, or an ending is claimed twice where a format has no ``sniff``.
    """
    if name in FORMATS:
        raise ValueError(f"input format {name!r} is registered twice")
    for ext in extensions:
        for other in FORMATS.components():
            if ext in other.extensions and (sniff is None or other.sniff is None):
                raise ValueError(
                    f"extension {ext!r} of {name!r} is already claimed by {other.name!r} "
                    "(shared endings need a content test on both formats)"
                )
    options = {}
    for parameter in inspect.signature(read).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY:
            default = parameter.default
            options[parameter.name] = str if default is None else type(default)
    fmt = InputFormat(name, tuple(extensions), read, help, count, sniff, directory_glob, options)
    FORMATS.add(Entry(name, fmt, help))
    return fmt


@dataclass(frozen=True)
class Source:
    """A parsed source spec: the file, its format (``None``: guess) and reader options."""

    path: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def with_path(self, path: str) -> Source:
        """The same format and options on another file (after glob or folder expansion)."""
        return Source(path, self.format, dict(self.options))

    def spec(self) -> str:
        """The spec string back (what provenance records and a second pass re-reads)."""
        if self.format is None:
            return self.path
        prefix = ",".join([self.format, *(f"{k}={v}" for k, v in self.options.items())])
        return f"{prefix}:{self.path}"


def parse_source(spec: str | os.PathLike, default_format: str | None = None) -> Source:
    """Split ``FORMAT[,KEY=VALUE...]:PATH``; a prefix that names no format is part of the path.

    ``default_format`` applies when the spec has no prefix.
    """
    spec = os.fspath(spec)
    head, sep, tail = spec.partition(":")
    if sep and tail:
        name, *pairs = head.split(",")
        if _known_format(name):
            options = {}
            for pair in pairs:
                key, eq, value = pair.partition("=")
                if not eq or not key:
                    raise InputError(
                        f"reader option {pair!r} is not KEY=VALUE",
                        file=spec,
                        hint="write FORMAT,KEY=VALUE:PATH",
                    )
                options[key.strip()] = value.strip()
            return Source(tail, name, options)
    return Source(spec, default_format)


def _known_format(name: str) -> bool:
    if name in FORMATS:
        return True
    from ase.io.formats import ioformats

    return name in ioformats


def format_of(source: Source) -> InputFormat | None:
    """The registered format that reads ``source`` (``None``: leave it to ASE).

    An explicit registered name wins; otherwise the longest claimed ending whose format's
    ``sniff`` accepts the file; a folder is claimed by a format whose ``directory_glob`` matches
    files inside it.
    """
    if source.format is not None:
        return FORMATS.get(source.format) if source.format in FORMATS else None
    path = source.path
    if os.path.isdir(path):
        import glob

        for fmt in FORMATS.components():
            if fmt.directory_glob and glob.glob(os.path.join(path, fmt.directory_glob)):
                return fmt
        return None
    name = os.path.basename(path).lower()
    candidates = [
        (len(ext), fmt)
        for fmt in FORMATS.components()
        for ext in fmt.extensions
        if name.endswith(ext)
    ]
    for _, fmt in sorted(candidates, key=lambda item: -item[0]):
        if fmt.sniff is None or fmt.sniff(path):
            return fmt
    return None


def reader_options(fmt: InputFormat, source: Source) -> dict[str, object]:
    """Convert the spec's option strings to the types of the reader's defaults."""
    converted: dict[str, object] = {}
    for key, text in source.options.items():
        kind = fmt.options.get(key)
        if kind is None:
            allowed = ", ".join(fmt.options) or "none"
            raise InputError(
                f"format {fmt.name!r} has no option {key!r}",
                file=source.spec(),
                hint=f"options of {fmt.name}: {allowed}",
            )
        converted[key] = _convert(text, kind, key, source)
    return converted


def _convert(text: str, kind: type, key: str, source: Source) -> object:
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    else:
        try:
            return kind(text)
        except ValueError:
            pass
    raise InputError(
        f"option {key}={text!r} is not a {kind.__name__}",
        file=source.spec(),
        hint="fix the value in FORMAT,KEY=VALUE:PATH",
    )


def describe_formats() -> str:
    """One line per registered format: name, endings, options, help."""
    lines = []
    for fmt in FORMATS.components():
        ends = " ".join(fmt.extensions) or "-"
        opts = f" [{', '.join(fmt.options)}]" if fmt.options else ""
        lines.append(f"{fmt.name:<14} {ends:<24} {fmt.help}{opts}")
    return "\n".join(lines)


def _register_builtin() -> None:
    from fntk.io.readers import ase_db, csv_index, oc20, oc20_lmdb, rgd1, transition1x

    register_format(
        "oc20-s2ef",
        (".extxyz.xz", ".extxyz"),
        oc20.iter_oc20_s2ef,
        "OC20 S2EF shard N.extxyz[.xz] with its N.txt[.xz] (sid, fid, reference energy)",
        count=oc20.count_oc20_s2ef,
        sniff=oc20.is_s2ef_shard,
    )
    register_format(
        "oc20-lmdb",
        (".lmdb",),
        oc20_lmdb.iter_oc20_lmdb,
        "fairchem LMDB of pickled torch_geometric Data (S2EF/IS2RE; a file or a folder)",
        count=oc20_lmdb.count_oc20_lmdb,
        directory_glob="*.lmdb",
    )
    register_format(
        "ase-db",
        (".aselmdb", ".db"),
        ase_db.iter_ase_db,
        "ASE database: fairchem .aselmdb (ase-db-backends), SQLite .db, or any ASE db type",
        count=ase_db.count_ase_db,
        directory_glob="*.aselmdb",
    )
    register_format(
        "transition1x",
        (".h5", ".hdf5"),
        transition1x.iter_transition1x,
        "Transition1x HDF5 (data/ and train|val|test soft links): NEB images, wB97x/6-31G(d)",
        count=transition1x.count_transition1x,
        sniff=transition1x.is_transition1x,
    )
    register_format(
        "rgd1",
        (".h5", ".hdf5"),
        rgd1.iter_rgd1,
        "RGD1_CHNO.h5 reactions: transition states with B3LYP-D3/TZVP energy (no forces)",
        count=rgd1.count_rgd1,
        sniff=rgd1.is_rgd1_reactions,
    )
    register_format(
        "rgd1-molecules",
        (".h5", ".hdf5"),
        rgd1.iter_rgd1_molecules,
        "RGD1_RPs.h5 optimised reactant/product molecules (molX: DFTG, DFT_SPE; no forces)",
        count=rgd1.count_rgd1_molecules,
        sniff=rgd1.is_rgd1_molecules,
    )
    register_format(
        "csv-index",
        (),
        csv_index.iter_csv_index,
        "CSV table naming one geometry file per row, other columns into info (e.g. PMechDB "
        "species you embedded and labelled yourself)",
    )


_register_builtin()
