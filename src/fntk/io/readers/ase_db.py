"""Reader of ASE databases of any type, streamed row by row: fairchem's ``.aselmdb`` first.

fairchem's current datasets (OC20 S2EF/IS2RE re-releases, OMat24, OMol25, ...) are ``.aselmdb``
files, the LMDB backend of ASE databases from the ``ase-db-backends`` package. Checked against
fairchem's ``AseDBDataset`` (FAIR-Chem/fairchem, ``src/fairchem/core/datasets/ase_datasets.py``):
it connects with ``ase.db.connect(path, readonly=True, use_lock_file=False)`` for ``aselmdb``,
takes a folder as all the databases in it, builds each structure with ``row.toatoms()`` and puts
``row.data`` back into ``atoms.info``. This reader does the same, one row at a time (``select``
is a generator in every ASE backend), and also keeps the row's key-value pairs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from numbers import Number

import ase.db
import numpy as np
from ase import Atoms

from fntk.errors import InputError


def iter_ase_db(path: str | os.PathLike, *, query: str = "") -> Iterator[Atoms]:
    """Yield the rows of an ASE database as Atoms with their stored results.

    Parameters
    ----------
    path : path of a ``.aselmdb``, ``.db`` (SQLite) or ``.json`` database
    query : str
        An ASE selection string (``"natoms<50,sid=123"``); default: every row.

    Yields
    ------
    Atoms
        With the row's calculator results, constraints and tags. ``info``: the row's key-value
        pairs, the scalar, text and array entries of ``row.data`` (as fairchem), ``db_id`` and
        ``record`` (``id<row id>``).

    Raises
    ------
    InputError
        Missing file, a backend that is not installed, or a file that is not an ASE database.
    """
    db = _connect(path)
    try:
        for row in _guard(_rows(db, query), path):
            atoms = row.toatoms()
            data = row.get("data") or {}
            atoms.info.update({k: v for k, v in data.items() if _simple(v)})
            atoms.info.update(row.key_value_pairs)
            atoms.info.update(db_id=row.id, record=f"id{row.id}")
            yield atoms
    finally:
        _close(db)


def count_ase_db(path: str | os.PathLike, *, query: str = "") -> int:
    """Number of rows (matching ``query``)."""
    db = _connect(path)
    try:
        return int(db.count(query) if query else db.count())
    except Exception as exc:  # backends raise sqlite3/lmdb/ValueError types on bad files
        raise InputError(
            f"not a readable ASE database ({type(exc).__name__}: {exc})", file=str(path)
        ) from None
    finally:
        _close(db)


SQLITE_PAGE = 500
"""Rows fetched per query from SQLite (ASE's SQLite ``select`` fetches all its rows at once)."""


def _rows(db, query: str) -> Iterator:
    """The rows of ``db`` matching ``query``, in id order, never all of them in memory."""
    from ase.db.sqlite import SQLite3Database

    if not isinstance(db, SQLite3Database):
        yield from (db.select(query) if query else db.select())  # lmdb backends stream
        return
    last = 0
    while True:
        page = list(db.select(",".join(filter(None, [f"id>{last}", query])), limit=SQLITE_PAGE))
        page.sort(key=lambda row: row.id)
        yield from page
        if len(page) < SQLITE_PAGE:
            return
        last = page[-1].id


def _simple(value: object) -> bool:
    """Entries that extended XYZ can write back (nested dicts and objects are left out)."""
    return isinstance(value, (str, Number, np.ndarray))


def _kind(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return {"aselmdb": "aselmdb", "lmdb": "aselmdb", "json": "json"}.get(ext, "db")


def _connect(path: str | os.PathLike):
    path = str(path)
    if not os.path.isfile(path):
        raise InputError("file not found", file=path, hint="check the path")
    kind = _kind(path)
    kwargs: dict[str, object] = {"type": kind}
    if kind == "aselmdb":
        try:
            import ase_db_backends  # noqa: F401
        except ImportError:
            raise InputError(
                "reading .aselmdb files needs the 'ase-db-backends' package",
                file=path,
                hint="pip install ase-db-backends (the 'data' extra of fntk)",
            ) from None
        _check_lmdb(path)
        kwargs.update(readonly=True, use_lock_file=False)
    else:
        kwargs.update(use_lock_file=False)
    try:
        db = ase.db.connect(path, **kwargs)
        db.count()  # fails here, not mid-stream, on a file that is no database
        return db
    except Exception as exc:  # backends raise sqlite3/lmdb/json/ValueError types on bad files
        raise InputError(
            f"not a readable ASE database ({type(exc).__name__}: {exc})",
            file=path,
            hint="check the file",
        ) from None


def _check_lmdb(path: str) -> None:
    """Open the LMDB ourselves first: the backend's object fails noisily in ``__del__``."""
    import lmdb

    try:
        lmdb.open(path, subdir=False, readonly=True, lock=False).close()
    except lmdb.Error as exc:
        raise InputError(
            f"not a readable ASE database ({type(exc).__name__}: {exc})",
            file=path,
            hint="check the file",
        ) from None


def _guard(rows, path) -> Iterator:
    """The rows of ``select``, with a backend's own errors turned into an :class:`InputError`."""
    index = 0
    try:
        for row in rows:
            yield row
            index += 1
    except InputError:
        raise
    except Exception as exc:  # sqlite3.DatabaseError, lmdb.Error, KeyError, ValueError ...
        raise InputError(
            f"not a readable ASE database near row {index} ({type(exc).__name__}: {exc})",
            file=str(path),
            hint="check the file",
        ) from None


def _close(db) -> None:
    close = getattr(db, "close", None)
    if callable(close):
        close()
