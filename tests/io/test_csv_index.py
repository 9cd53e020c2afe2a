"""A CSV index of geometry files (what the old "PMechDB reader" really was), and its format."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.errors import InputError
from fntk.io import iter_chunks
from fntk.io.readers import iter_csv_index


def test_csv_index_reads_geometries_labels_and_columns(tmp_path):
    from ase.build import molecule

    geoms = tmp_path / "geoms"
    geoms.mkdir()
    water = molecule("H2O")
    water.calc = SinglePointCalculator(water, energy=-1.0, forces=np.ones((3, 3)))
    ase.io.write(geoms / "r.xyz", water, format="extxyz")
    ase.io.write(geoms / "p.xyz", molecule("NH3"), format="extxyz")
    (tmp_path / "steps.csv").write_text(
        "reaction,role,xyz,energy_hartree\n"
        "pm-1,reactant,geoms/r.xyz,-2.0\n"
        "pm-1,product,geoms/p.xyz,\n"
    )
    frames = list(
        iter_csv_index(
            tmp_path / "steps.csv", energy_column="energy_hartree", energy_unit="hartree"
        )
    )
    assert [a.get_chemical_formula() for a in frames] == ["H2O", "H3N"]
    assert frames[0].get_potential_energy() == pytest.approx(-2.0 * units.Hartree)
    np.testing.assert_array_equal(frames[0].get_forces(), np.ones((3, 3)))  # kept from file
    assert frames[0].info["reaction"] == "pm-1" and frames[0].info["role"] == "reactant"
    assert frames[0].info["row"] == 1 and frames[0].info["dataset"] == "csv-index"
    assert frames[0].info["record"] == "row1" and frames[0].info["geometry_file"] == "geoms/r.xyz"
    assert frames[1].calc is None  # empty energy cell: unlabelled (a pool candidate)
    # Without an energy column the file's own labels are kept.
    plain = list(iter_csv_index(tmp_path / "steps.csv"))
    assert plain[0].get_potential_energy() == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n", {}, "no column 'xyz'"),
        ("xyz\nmissing.xyz\n", {}, "row 1: geometry file"),
        ("xyz,e\nr.xyz,abc\n", {"energy_column": "e"}, "row 1: energy 'abc' is not a number"),
    ],
)
def test_errors_name_csv_and_row(tmp_path, text, kwargs, message):
    from ase.build import molecule

    ase.io.write(tmp_path / "r.xyz", molecule("H2O"))
    (tmp_path / "steps.csv").write_text(text)
    with pytest.raises(InputError, match=message) as info:
        list(iter_csv_index(tmp_path / "steps.csv", **kwargs))
    assert "steps.csv" in str(info.value)


def test_explicit_csv_index_format_with_options(tmp_path):
    from ase.build import molecule

    ase.io.write(tmp_path / "a.xyz", molecule("H2O"))
    (tmp_path / "steps.csv").write_text("geom,e_kcal\na.xyz,-1.0\n")
    options = "geometry_column=geom,energy_column=e_kcal,energy_unit=kcal/mol"
    spec = f"csv-index,{options}:{tmp_path / 'steps.csv'}"
    (chunk,) = list(iter_chunks([spec], 4))
    assert chunk.structures[0].get_potential_energy() == pytest.approx(-units.kcal / units.mol)
