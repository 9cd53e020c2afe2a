"""Reader of fairchem's LMDB files of pickled torch_geometric ``Data`` (OC20 S2EF, IS2RE/IS2RS).

Checked against fairchem's writer and reader (FAIR-Chem/fairchem):
``src/fairchem/core/scripts/preprocess_ef.py`` writes one record per frame under the ASCII key
``b"<i>"`` (i = 0, 1, ...) as ``pickle.dumps(Data)`` and a ``b"length"`` key with the pickled
count; ``src/fairchem/core/datasets/lmdb_dataset.py`` opens each ``*.lmdb`` file of a folder
with ``subdir=False, readonly=True, lock=False``, takes the length from ``length`` (else the
number of entries) and converts records pickled by torch_geometric 1.x (fields in
``__dict__``) as well as 2.x (fields in ``_store._mapping``). The ``Data`` fields, from
``src/fairchem/core/preprocessing/atoms_to_graphs.py``: ``pos`` (n, 3), ``cell`` (1, 3, 3),
``atomic_numbers``, ``natoms``, ``tags``, ``fixed`` (1 = fixed), ``energy`` (older LMDBs:
``y``; IS2RE: ``y_init``/``y_relaxed`` with ``pos_relaxed``), ``forces`` (older: ``force``),
``sid``, ``fid``. Energies are whatever the writer stored: total, or adsorption energies when
it ran with ``--ref-energy``.

The records are unpickled by a restricted unpickler: torch_geometric's classes become a plain
container (torch_geometric is not needed to read), tensors are rebuilt by torch's
``weights_only`` loader, and any other class in the pickle is refused.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from fntk.errors import InputError

_PYG_CLASSES = {
    ("torch_geometric.data.data", "Data"),
    ("torch_geometric.data.data", "DataEdgeAttr"),
    ("torch_geometric.data.data", "DataTensorAttr"),
    ("torch_geometric.data.storage", "GlobalStorage"),
    ("torch_geometric.data.storage", "BaseStorage"),
    ("torch_geometric.data", "Data"),
}


class PygRecord:
    """Stand-in for any torch_geometric object in a pickle: it only keeps its pickled state."""

    def __init__(self, *args: object) -> None:
        self.state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state

    def fields(self) -> dict[str, object]:
        """The ``Data`` fields: ``_store._mapping`` (PyG 2.x) or the ``__dict__`` (PyG 1.x)."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[1]  # (None, slots) form
        if not isinstance(state, dict):
            return {}
        store = state.get("_store")
        if isinstance(store, PygRecord) and isinstance(store.state, dict):
            mapping = store.state.get("_mapping", {})
            return dict(mapping) if isinstance(mapping, dict) else {}
        return {k: v for k, v in state.items() if not k.startswith("_") and v is not None}


def _load_storage_bytes(data: bytes) -> object:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def _allowed() -> dict[tuple[str, str], object]:
    import codecs
    import collections

    import torch

    allowed: dict[tuple[str, str], object] = {
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch", "Size"): torch.Size,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 renamed core to _core
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray.multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.multiarray.scalar
    for name in ("FloatStorage", "DoubleStorage", "LongStorage", "IntStorage", "ByteStorage"):
        allowed[("torch", name)] = getattr(torch, name)
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles fairchem records; refuses every global but tensors, numpy and PyG classes."""

    _table: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _PYG_CLASSES or (
            module.startswith("torch_geometric.data") and name.endswith(("Storage", "Attr"))
        ):
            return PygRecord
        if RestrictedUnpickler._table is None:
            RestrictedUnpickler._table = _allowed()
        target = RestrictedUnpickler._table.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return target


def restricted_loads(data: bytes) -> object:
    """``pickle.loads`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def iter_oc20_lmdb(path: str | os.PathLike, *, relaxed: bool = False) -> Iterator[Atoms]:
    """Yield the records of one fairchem LMDB file, in key order, one at a time.

    Parameters
    ----------
    path : path of a ``.lmdb`` file (a folder of them is expanded by :mod:`fntk.io.formats`)
    relaxed : bool
        IS2RE/IS2RS records: yield the relaxed structure (``pos_relaxed``, ``y_relaxed``)
        instead of the initial one (``pos``, ``y_init``).

    Yields
    ------
    Atoms
        Periodic when a cell is stored; energy (``energy``, ``y`` or ``y_init``) and forces
        (``forces`` or ``force``) when present; ``fixed`` as ``FixAtoms``; ``tags``.
        ``info``: ``dataset="oc20"``, ``sid``, ``fid`` when stored, ``lmdb_key`` and
        ``record`` (``random<sid>,frame<fid>``, else the key); other scalar fields as
        ``oc20_<name>``.

    Raises
    ------
    InputError
        Missing file, not an LMDB, a missing key, or a record that is not a fairchem ``Data``.
    """
    env = _open(path)
    try:
        with env.begin() as txn:
            for key in range(_length(txn, env, path)):
                raw = txn.get(str(key).encode("ascii"))
                if raw is None:
                    raise InputError(
                        f"key {key} is missing",
                        file=str(path),
                        hint="fairchem LMDBs hold keys 0..length-1; is the file complete?",
                    )
                yield _to_atoms(_fields(raw, path, key), path, key, relaxed)
    finally:
        env.close()


def count_oc20_lmdb(path: str | os.PathLike, *, relaxed: bool = False) -> int:
    """Number of records: the ``length`` key, else the number of entries (as fairchem)."""
    env = _open(path)
    try:
        with env.begin() as txn:
            return _length(txn, env, path)
    finally:
        env.close()


def _open(path: str | os.PathLike):
    try:
        import lmdb
    except ImportError:
        raise InputError(
            "reading LMDB files needs the 'lmdb' package",
            file=str(path),
            hint="pip install lmdb (the 'data' extra of fntk)",
        ) from None
    if not os.path.isfile(path):
        raise InputError("file not found", file=str(path), hint="check the path")
    try:
        return lmdb.open(
            str(path), subdir=False, readonly=True, lock=False, readahead=True, meminit=False
        )
    except lmdb.Error as exc:
        raise InputError(
            f"not a readable LMDB file ({exc})", file=str(path), hint="check the download"
        ) from None


def _length(txn, env, path) -> int:
    raw = txn.get(b"length")
    if raw is None:
        return int(env.stat()["entries"])
    try:
        value: Any = restricted_loads(raw)
        return int(value.item() if hasattr(value, "item") else value)
    except (pickle.UnpicklingError, TypeError, ValueError, EOFError) as exc:
        raise InputError(
            f"the 'length' key is not a pickled integer ({exc})", file=str(path)
        ) from None


def _fields(raw: bytes, path, key: int) -> dict[str, object]:
    try:
        record = restricted_loads(raw)
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
        raise InputError(
            f"record {key} is not a fairchem Data pickle ({exc})",
            file=str(path),
            hint="this reader takes fairchem S2EF/IS2RE LMDBs; .aselmdb files are 'ase-db'",
        ) from None
    if isinstance(record, PygRecord):
        fields = record.fields()
    elif isinstance(record, dict):
        fields = record
    else:
        fields = {}
    if "pos" not in fields or "atomic_numbers" not in fields:
        raise InputError(
            f"record {key} has no pos/atomic_numbers (fields: {', '.join(fields) or 'none'})",
            file=str(path),
            hint="is this a fairchem OC20 LMDB?",
        )
    return fields


def _array(value: object) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _scalar(value: object) -> object:
    array = _array(value)
    if array.size != 1:
        return None
    item = array.reshape(()).item()
    return item


def _first(fields: dict[str, object], *names: str) -> object:
    for name in names:
        if fields.get(name) is not None:
            return fields[name]
    return None


def _to_atoms(fields: dict[str, object], path, key: int, relaxed: bool) -> Atoms:
    numbers = _array(fields["atomic_numbers"]).astype(int).reshape(-1)
    if relaxed:
        if fields.get("pos_relaxed") is None:
            raise InputError(
                f"record {key} has no pos_relaxed", file=str(path), hint="drop relaxed=true"
            )
        positions = _array(fields["pos_relaxed"])
        energy = _first(fields, "y_relaxed")
        forces = None
    else:
        positions = _array(fields["pos"])
        energy = _first(fields, "energy", "y", "y_init")
        forces = _first(fields, "forces", "force")
    positions = positions.astype(np.float64).reshape(len(numbers), 3)
    cell = fields.get("cell")
    cell_array = None if cell is None else _array(cell).astype(np.float64).reshape(3, 3)
    if fields.get("pbc") is not None:
        pbc: Any = _array(fields["pbc"]).astype(bool).reshape(-1)
    else:
        pbc = cell_array is not None and abs(np.linalg.det(cell_array)) > 1e-8
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell_array, pbc=pbc)
    if fields.get("tags") is not None:
        atoms.set_tags(_array(fields["tags"]).astype(int).reshape(-1))
    if fields.get("fixed") is not None:
        fixed = np.flatnonzero(_array(fields["fixed"]).reshape(-1))
        if len(fixed):
            atoms.set_constraint(FixAtoms(indices=fixed))
    results: dict[str, object] = {}
    if energy is not None:
        results["energy"] = float(_scalar(energy))  # type: ignore[arg-type]
    if forces is not None:
        results["forces"] = _array(forces).astype(np.float64).reshape(len(numbers), 3)
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    info: dict[str, object] = {"dataset": "oc20", "lmdb_key": key}
    for name in ("sid", "fid"):
        if fields.get(name) is not None:
            value = _scalar(fields[name])
            info[name] = value if not isinstance(value, bytes) else value.decode()
    info["record"] = (
        f"random{info['sid']},frame{info['fid']}"
        if "sid" in info and "fid" in info
        else f"random{info['sid']}"
        if "sid" in info
        else f"key{key}"
    )
    for name in ("y_relaxed", "y_init"):
        if name in fields and fields[name] is not None and name != _used(fields, relaxed):
            scalar = _scalar(fields[name])
            if isinstance(scalar, (int, float)):
                info[f"oc20_{name}"] = scalar
    atoms.info.update(info)
    return atoms


def _used(fields: dict[str, object], relaxed: bool) -> str | None:
    if relaxed:
        return "y_relaxed"
    for name in ("energy", "y", "y_init"):
        if fields.get(name) is not None:
            return name
    return None
