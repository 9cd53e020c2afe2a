"""Reader of OC20 S2EF shards (Chanussot et al., ACS Catal. 2021) as FAIR-Chem releases them.

Checked against fairchem's own converter, ``src/fairchem/core/scripts/preprocess_ef.py``
(FAIR-Chem/fairchem): an S2EF shard is a pair ``N.extxyz`` + ``N.txt`` (both LZMA-compressed,
``.xz``, in the download). Line ``i`` of the text file describes frame ``i`` of the extxyz as
``random<sid>,frame<fid>,<reference energy>``; fairchem strips the ``random``/``frame`` prefixes
to integers ``sid`` (system id) and ``fid`` (frame in the relaxation) and subtracts the
reference energy (eV, the gas-phase and slab references) to get the adsorption energy its
models train on. The extxyz frames carry ``energy`` and ``free_energy`` (eV; fairchem's
``AtomsToGraphs`` trains on ``energy``), ``forces`` (eV/Angstrom), per-atom ``tags`` (0
subsurface, 1 surface, 2 adsorbate) and ``move_mask`` (False = fixed), which ASE turns into a
``FixAtoms`` constraint. fairchem reads forces with ``apply_constraint=False``; so does fntk.
"""

from __future__ import annotations

import io
import lzma
import os
from collections.abc import Iterator
from pathlib import Path

import ase.io
from ase import Atoms

from fntk.errors import InputError


def iter_oc20_s2ef(
    path: str | os.PathLike, *, txt: str = "", adsorption: bool = False
) -> Iterator[Atoms]:
    """Yield the frames of one S2EF shard with their metadata, one at a time.

    Parameters
    ----------
    path : path of ``N.extxyz`` or ``N.extxyz.xz``
    txt : str
        The metadata file; default (empty): the same stem with ``.txt`` (``.txt.xz`` for a
        compressed shard, whichever exists).
    adsorption : bool
        Subtract the reference energy from ``energy`` (and ``free_energy``), as fairchem's
        ``--ref-energy`` does; default: total DFT energies as released.

    Yields
    ------
    Atoms
        Energy, free energy and forces as a single-point calculator, fixed atoms as
        ``FixAtoms``, ``tags`` as read. ``info``: ``dataset="oc20"``, ``sid`` and ``fid``
        (integers), ``oc20_reference_energy`` (eV), ``record`` (``random<sid>,frame<fid>``).

    Raises
    ------
    InputError
        A file is missing, a metadata line is malformed, or frame and line counts differ.
    """
    extxyz = Path(path)
    txt_path = Path(txt) if txt else _sibling_txt(extxyz)
    with _open_text(txt_path) as lines, _open_text(extxyz) as handle:
        frames = ase.io.iread(handle, index=":", format="extxyz")  # type: ignore[arg-type]
        for index, atoms in enumerate(frames):
            line = _next_line(lines)
            if line is None:
                raise _count_mismatch(extxyz, txt_path, index)
            sid, fid, reference = _parse_line(line, txt_path, index)
            if adsorption and reference is not None and atoms.calc is not None:
                for key in ("energy", "free_energy"):
                    if key in atoms.calc.results:
                        atoms.calc.results[key] = float(atoms.calc.results[key]) - reference
            atoms.info.update(dataset="oc20", sid=sid, fid=fid, record=_record(sid, fid))
            if reference is not None:
                atoms.info["oc20_reference_energy"] = reference
            yield atoms
        if _next_line(lines) is not None:
            raise _count_mismatch(extxyz, txt_path, None)


def count_oc20_s2ef(path: str | os.PathLike, *, txt: str = "", adsorption: bool = False) -> int:
    """Number of frames of a shard: the non-empty lines of its metadata file."""
    txt_path = Path(txt) if txt else _sibling_txt(Path(path))
    with _open_text(txt_path) as lines:
        return sum(1 for line in lines if line.strip())


def is_s2ef_shard(path: str) -> bool:
    """Whether ``path`` has an S2EF metadata file beside it whose first line starts ``random``.

    A compressed ``.extxyz.xz`` is always taken (ASE cannot read it), so a missing ``.txt``
    is reported as such.
    """
    if path.lower().endswith(".xz"):
        return True
    try:
        with _open_text(_sibling_txt(Path(path))) as lines:
            first = _next_line(lines)
    except (InputError, OSError, lzma.LZMAError, UnicodeDecodeError):
        return False
    return first is not None and first.startswith("random")


def _record(sid: int | str, fid: int | str) -> str:
    return f"random{sid},frame{fid}"


def _parse_line(line: str, path: Path, index: int) -> tuple[int | str, int, float | None]:
    """``random<sid>,frame<fid>[,<reference energy>]``; bare numbers are accepted too."""
    parts = [p.strip() for p in line.split(",")]
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        sid_text = parts[0].removeprefix("random")
        sid: int | str = int(sid_text) if sid_text.isdigit() else parts[0]
        fid = int(parts[1].removeprefix("frame"))
        reference = float(parts[2]) if len(parts) == 3 and parts[2] else None
    except ValueError:
        raise InputError(
            f"line {index + 1} is {line!r}",
            file=str(path),
            hint="expected 'random<sid>,frame<fid>,<reference energy>'",
        ) from None
    return sid, fid, reference


def _next_line(lines) -> str | None:
    for line in lines:
        if line.strip():
            return line.strip()
    return None


def _count_mismatch(extxyz: Path, txt: Path, n_frames: int | None) -> InputError:
    what = (
        "more metadata lines than frames"
        if n_frames is None
        else (f"only {n_frames} metadata lines for more frames")
    )
    return InputError(
        f"{what} in {txt}", file=str(extxyz), hint="use the .txt file that belongs to this shard"
    )


def _sibling_txt(extxyz: Path) -> Path:
    name = extxyz.name
    for ending in (".extxyz.xz", ".extxyz", ".xyz.xz", ".xyz"):
        if name.endswith(ending):
            stem = name[: -len(ending)]
            plain, packed = extxyz.with_name(stem + ".txt"), extxyz.with_name(stem + ".txt.xz")
            if ending.endswith(".xz"):
                return packed if packed.exists() or not plain.exists() else plain
            return plain if plain.exists() or not packed.exists() else packed
    return extxyz.with_suffix(".txt")


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise InputError("file not found", file=str(path), hint="S2EF shards come in pairs")
    if path.suffix == ".xz":
        return lzma.open(path, "rt")
    return open(path)
