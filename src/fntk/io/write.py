"""Writing structures: extended XYZ, atomically, never over an input file.

The file is written to a temporary sibling and renamed into place, so a crash leaves either
the old file or the complete new one, never half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from fntk.errors import InputError


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    _atomic(path, lambda handle: handle.write(text))


def atomic_write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``numpy.savez`` of ``arrays`` to ``path`` through a temporary file and an atomic rename."""
    _atomic(path, lambda handle: np.savez(handle, **arrays), mode="wb")


def write_extxyz(
    path: str | os.PathLike,
    structures: Sequence[Atoms],
    *,
    protected: Sequence[str | os.PathLike] = (),
) -> None:
    """Write ``structures`` as extended XYZ to ``path`` atomically.

    ``protected`` lists input files; writing onto one of them raises :class:`InputError`.
    """
    from fntk.io.formats import parse_source

    target = Path(path).resolve()
    for p in protected:
        if Path(parse_source(p).path).resolve() == target:
            raise InputError(
                "refusing to overwrite an input file", file=str(path), hint="choose another output"
            )
    _atomic(path, lambda handle: ase.io.write(handle, list(structures), format="extxyz"))


def _atomic(path: str | os.PathLike, write, mode: str = "w") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
