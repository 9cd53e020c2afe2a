"""Writing structures: extended XYZ, atomically, never over an input file.

The file is written to a temporary sibling and renamed into place, so a crash leaves either
the old file or the complete new one, never half a file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import ase.io
import numpy as np
from ase import Atoms

from fntk.errors import FntkError, InputError, OutputError


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    _atomic(path, lambda handle: handle.write(text))


def atomic_write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``numpy.savez`` of ``arrays`` to ``path`` through a temporary file and an atomic rename."""
    _atomic(path, lambda handle: np.savez(handle, **arrays), mode="wb")  # type: ignore[arg-type]


def atomic_write_with(
    path: str | os.PathLike, write: Callable[[IO], object], *, binary: bool = False
) -> None:
    """Call ``write(handle)`` on a temporary sibling of ``path``, then rename it into place."""
    _atomic(path, write, mode="wb" if binary else "w")


def write_extxyz(
    path: str | os.PathLike,
    structures: Sequence[Atoms],
    *,
    protected: Sequence[str | os.PathLike] = (),
) -> None:
    """Write ``structures`` as extended XYZ to ``path`` atomically.

    ``protected`` lists input files; writing onto one of them raises :class:`InputError`.
    """
    check_not_input(path, protected)
    _atomic(path, lambda handle: ase.io.write(handle, list(structures), format="extxyz"))


def check_not_input(path: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> None:
    """Raise :class:`InputError` when ``path`` is one of the files ``inputs`` names.

    ``inputs`` are source specs as given by the user: globs and data-set folders are expanded
    and every path resolved (symlinks, ``..``) before comparing, so ``g/*.xyz`` protects
    ``g/b.xyz``.
    """
    from fntk.io.formats import parse_source
    from fntk.io.read import expand_paths

    target = Path(path).resolve()
    specs = [str(p) for p in inputs]
    try:
        files = expand_paths(specs) if specs else []
    except InputError:
        files = specs
    for spec in files:
        source = Path(parse_source(spec).path)
        same = source.resolve() == target
        if not same and source.exists() and target.exists():
            same = os.path.samefile(source, target)
        if same:
            raise InputError(
                "refusing to overwrite an input file", file=str(path), hint="choose another -o"
            )


def check_writable_file(path: str | os.PathLike) -> None:
    """Raise :class:`InputError` unless a file can be written at ``path`` (before any compute)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("output path is a directory", file=str(path), hint="name a file with -o")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{parent} is not a directory", file=str(path), hint="choose another -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"folder {parent} is not writable", file=str(path), hint="choose another -o"
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: str | os.PathLike, write, mode: str = "w") -> None:
    """Write through a temporary sibling, chmod to 0644 minus umask, rename into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise output_error(exc, path) from None
        raise InputError(
            f"cannot write the output ({exc.strerror})", file=str(path), hint="choose another -o"
        ) from None
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, IsADirectoryError | PermissionError):
            raise InputError(
                f"cannot write the output ({exc.strerror})",
                file=str(path),
                hint="choose another -o",
            ) from None
        if isinstance(exc, OSError) and not isinstance(exc, FntkError):
            raise output_error(exc, path) from None
        raise


def output_error(exc: OSError, path: str | os.PathLike) -> OutputError:
    """One-line :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        problem = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return OutputError(
            f"{problem} writing {path} (free some space, then rerun the same command)"
        )
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {path} ({reason})")
