"""Readers of OC20 S2EF data (Chanussot et al., ACS Catal. 2021): extxyz shards and ASE dbs.

An S2EF shard is a pair ``N.extxyz`` + ``N.txt`` (each optionally LZMA-compressed, ``.xz``).
The extxyz frames carry the total DFT energy (eV), forces (eV/Angstrom) and per-atom ``tags``
(0 subsurface, 1 surface, 2 adsorbate); line ``i`` of the text file describes frame ``i`` as
``system_id,frame_number,reference_energy``, where ``frame_number`` indexes the source
relaxation and the reference energy (eV) turns the total energy into the adsorption energy
that OC20 models predict. OC20 subsets converted to ASE databases (``.db``) are read row by row.
"""

from __future__ import annotations

import io
import lzma
import os
from collections.abc import Iterator
from pathlib import Path

import ase.db
import ase.io
from ase import Atoms

from fntk.errors import InputError


def iter_oc20_s2ef(
    extxyz_path: str | os.PathLike, txt_path: str | os.PathLike | None = None
) -> Iterator[Atoms]:
    """Yield the frames of one S2EF shard with their metadata.

    Parameters
    ----------
    extxyz_path : path of ``N.extxyz`` or ``N.extxyz.xz``
    txt_path : path or None
        The metadata file; default: the same stem with ``.txt`` (``.txt.xz`` for a compressed
        shard).

    Yields
    ------
    Atoms
        Total energy (eV) and forces (eV/Angstrom) as read; ``info`` has ``source="oc20"``,
        ``oc20_system_id``, ``oc20_frame`` (index in the source relaxation),
        ``oc20_reference_energy`` (eV), ``file`` and ``index`` (frame in the shard).

    Raises
    ------
    InputError
        A file is missing, a metadata line is malformed, or the frame and line counts differ.
    """
    extxyz_path = Path(extxyz_path)
    txt_path = Path(txt_path) if txt_path is not None else _sibling_txt(extxyz_path)
    metadata = _read_metadata(txt_path)
    n_frames = 0
    for index, atoms in enumerate(_iread_extxyz(extxyz_path)):
        if index >= len(metadata):
            raise _count_mismatch(extxyz_path, txt_path, len(metadata))
        system_id, frame, reference = metadata[index]
        atoms.info.update(
            source="oc20",
            oc20_system_id=system_id,
            oc20_frame=frame,
            oc20_reference_energy=reference,
            file=str(extxyz_path),
            index=index,
        )
        n_frames += 1
        yield atoms
    if n_frames != len(metadata):
        raise _count_mismatch(extxyz_path, txt_path, len(metadata))


def _count_mismatch(extxyz_path: Path, txt_path: Path, n_lines: int) -> InputError:
    return InputError(
        f"{n_lines} metadata lines in {txt_path} but a different number of frames",
        file=str(extxyz_path),
        hint="use the .txt file that belongs to this shard",
    )


def iter_oc20_db(path: str | os.PathLike) -> Iterator[Atoms]:
    """Yield every row of an ASE database of OC20 structures with its stored results.

    ``info`` has ``source="oc20"``, ``db_id`` (row id) and the row's key-value pairs.

    Raises
    ------
    InputError
        The file is missing or is not an ASE database.
    """
    if not os.path.isfile(path):
        raise InputError("file not found", file=str(path), hint="check the path")
    try:
        rows = list(ase.db.connect(str(path), type="db").select())
    except Exception as exc:  # ase.db raises sqlite3 and ValueError subclasses on bad files
        raise InputError(
            f"not a readable ASE database ({exc})", file=str(path), hint="check the file"
        ) from None
    for row in rows:
        atoms = row.toatoms()
        atoms.info.update(row.key_value_pairs, source="oc20", db_id=row.id)
        yield atoms


def _sibling_txt(extxyz_path: Path) -> Path:
    name = extxyz_path.name
    if name.endswith(".extxyz.xz"):
        return extxyz_path.with_name(name[: -len(".extxyz.xz")] + ".txt.xz")
    return extxyz_path.with_suffix(".txt")


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise InputError("file not found", file=str(path), hint="S2EF shards come in pairs")
    if path.suffix == ".xz":
        return lzma.open(path, "rt")
    return open(path)


def _read_metadata(path: Path) -> list[tuple[str, int, float]]:
    rows = []
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle):
            if not line.strip():
                continue
            parts = line.strip().split(",")
            try:
                system_id, frame, reference = parts
                rows.append((system_id, int(frame), float(reference)))
            except ValueError:
                raise InputError(
                    f"line {line_number + 1} is {line.strip()!r}",
                    file=str(path),
                    hint="expected 'system_id,frame_number,reference_energy'",
                ) from None
    return rows


def _iread_extxyz(path: Path) -> Iterator[Atoms]:
    with _open_text(path) as handle:
        yield from ase.io.iread(handle, index=":", format="extxyz")
