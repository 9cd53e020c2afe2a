"""Reader of a CSV index of geometry files: one structure per row, the other columns as info.

This is *not* a reader of anything PMechDB publishes. PMechDB (Tavakoli et al., polar
elementary reaction steps) releases CSV tables of atom-mapped reaction SMIRKS with arrow-pushing
codes for the electron flow: no 3D geometries, no energies, no forces. To use such steps here,
embed and label their species yourself (e.g. RDKit conformers, then GFN2-xTB or DFT) and list
the resulting files in a CSV; this reader then streams them with the step's columns attached.

The CSV has one row per structure, a column naming its geometry file (any format ASE reads,
relative to the CSV's folder; extended XYZ keeps energies and forces) and optionally a column
with its energy. Every other column (e.g. ``reaction``, ``role``, ``smirks``) goes into
``Atoms.info``. Read it with ``csv-index:steps.csv`` (options ``geometry_column``,
``energy_column``, ``energy_unit``). Example ``steps.csv``::

    reaction,role,xyz,energy_hartree
    pm-0001,reactant,geoms/pm-0001_r.xyz,-153.2211
    pm-0001,product,geoms/pm-0001_p.xyz,-153.2009
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.errors import InputError, unknown_name

ENERGY_UNITS = {"eV": 1.0, "hartree": units.Hartree, "kcal/mol": units.kcal / units.mol}
"""Energy units of the energy column, in eV."""


def iter_csv_index(
    path: str | os.PathLike,
    *,
    geometry_column: str = "xyz",
    energy_column: str = "",
    energy_unit: str = "eV",
) -> Iterator[Atoms]:
    """Yield one structure per CSV row, labelled when the row or the file carries labels.

    Parameters
    ----------
    path : path
        The CSV index.
    geometry_column : str
        Column with the geometry file of the row (relative paths start at the CSV's folder).
    energy_column : str
        Column with the energy; empty (default) keeps whatever the geometry file carries (an
        extended XYZ ``energy`` and ``forces``); an empty cell leaves the row unlabelled.
    energy_unit : {"eV", "hartree", "kcal/mol"}

    Yields
    ------
    Atoms
        ``info``: ``dataset="csv-index"``, ``row`` (1-based data row), ``record``
        (``row<k>``), ``geometry_file`` and the row's other columns.
        With ``energy_column``, the energy (eV) joins the forces the file holds, if any.

    Raises
    ------
    InputError
        Unknown ``energy_unit``, missing CSV or column, missing or unreadable geometry file, or
        an energy that is not a number; the message names the CSV (and the row).
    """
    import ase.io

    csv_path = Path(path)
    energy_column = energy_column or None  # type: ignore[assignment]
    if energy_unit not in ENERGY_UNITS:
        raise unknown_name("energy_unit", energy_unit, ", ".join(ENERGY_UNITS), file=str(path))
    if not csv_path.is_file():
        raise InputError("file not found", file=str(csv_path), hint="check the path")
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in (geometry_column, energy_column):
            if needed is not None and needed not in columns:
                raise InputError(
                    f"no column {needed!r} (columns: {', '.join(columns) or 'none'})",
                    file=str(csv_path),
                    hint="pass geometry_column= and energy_column= with the CSV's column names",
                )
        for row_number, row in enumerate(reader, start=1):
            geometry = csv_path.parent / row[geometry_column]
            try:
                atoms: Atoms = ase.io.read(geometry)  # type: ignore[assignment]  # one frame
            except Exception as exc:  # ASE raises many types for unreadable files
                raise InputError(
                    f"row {row_number}: geometry file {geometry} could not be read ({exc})",
                    file=str(csv_path),
                    hint="check the path in the CSV (relative to the CSV's folder)",
                ) from None
            if energy_column is not None and row[energy_column].strip():
                _attach_energy(atoms, row[energy_column], energy_unit, csv_path, row_number)
            info = {k: v for k, v in row.items() if k not in (geometry_column, energy_column)}
            atoms.info.update(info)
            atoms.info.update(
                dataset="csv-index",
                row=row_number,
                record=f"row{row_number}",
                geometry_file=row[geometry_column],
            )
            yield atoms


def _attach_energy(atoms: Atoms, text: str, unit: str, csv_path: Path, row: int) -> None:
    try:
        energy = float(text) * ENERGY_UNITS[unit]
    except ValueError:
        raise InputError(
            f"row {row}: energy {text!r} is not a number", file=str(csv_path)
        ) from None
    forces = None
    if atoms.calc is not None and "forces" in atoms.calc.results:
        forces = atoms.calc.results["forces"]
    results = {"energy": energy} if forces is None else {"energy": energy, "forces": forces}
    atoms.calc = SinglePointCalculator(atoms, **results)
