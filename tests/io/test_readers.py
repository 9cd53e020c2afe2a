"""Readers of published data sets, each on a small file written here in the published layout."""

from __future__ import annotations

import lzma

import ase.db
import ase.io
import numpy as np
import pytest
from ase import units
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.data import make_adsorbate_structures
from fntk.errors import InputError
from fntk.io.readers import (
    iter_oc20_db,
    iter_oc20_s2ef,
    iter_pmechdb,
    iter_rgd1,
    iter_transition1x,
)

h5py = pytest.importorskip("h5py")  # installed with the mace extra

T1X_NUMBERS = np.array([6, 6, 8, 1, 1, 1, 1])


def write_t1x_reaction(group, rng, n_path: int) -> dict:
    """One ``{formula}/{reaction}`` group: path images plus reactant, TS and product."""
    values = {}
    group["atomic_numbers"] = T1X_NUMBERS
    for role, n in (("", n_path), ("reactant", 1), ("transition_state", 1), ("product", 1)):
        target = group.create_group(role) if role else group
        positions = rng.normal(size=(n, 7, 3))
        energies = rng.normal(size=n) - 4000.0
        forces = rng.normal(size=(n, 7, 3))
        target["positions"] = positions
        target["wB97x_6-31G(d).energy"] = energies
        target["wB97x_6-31G(d).forces"] = forces
        target["wB97x_6-31G(d).atomization_energy"] = energies + 3000.0
        values[role or "path"] = (positions, energies, forces)
    return values


def test_transition1x_yields_path_then_endpoints_with_labels(tmp_path):
    path = tmp_path / "transition1x.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        train = write_t1x_reaction(handle.create_group("train/C2H4O/rxn0001"), rng, n_path=3)
        write_t1x_reaction(handle.create_group("test/C2H4O/rxn0002"), rng, n_path=2)
    frames = list(iter_transition1x(path, split="train"))
    roles = [a.info["role"] for a in frames]
    assert roles == ["path"] * 3 + ["reactant", "transition_state", "product"]
    positions, energies, forces = train["path"]
    assert np.array_equal(frames[1].numbers, T1X_NUMBERS)
    assert np.allclose(frames[1].positions, positions[1])
    assert frames[1].get_potential_energy() == pytest.approx(energies[1])
    assert np.allclose(frames[1].get_forces(), forces[1])
    ts_positions, ts_energy, _ = train["transition_state"]
    assert np.allclose(frames[4].positions, ts_positions[0])
    assert frames[4].get_potential_energy() == pytest.approx(ts_energy[0])
    assert frames[4].info == {
        "source": "transition1x",
        "split": "train",
        "formula": "C2H4O",
        "reaction": "rxn0001",
        "role": "transition_state",
        "conformer": 0,
    }
    assert len(list(iter_transition1x(path, split="test", include_path=False))) == 3


def test_transition1x_errors_name_the_problem(tmp_path):
    path = tmp_path / "t1x.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("data/CH4/rxn1")
        group["atomic_numbers"] = np.array([6, 1, 1, 1, 1])
        group["positions"] = np.zeros((1, 5, 3))
    with pytest.raises(InputError, match=r"no split group 'val'.*choose one of: data"):
        list(iter_transition1x(path, split="val"))
    with pytest.raises(
        InputError, match=r"/data/CH4/rxn1 has no dataset 'wB97x_6-31G\(d\).energy'"
    ):
        list(iter_transition1x(path))
    with pytest.raises(InputError, match="file not found"):
        list(iter_transition1x(tmp_path / "missing.h5"))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5 file"):
        list(iter_transition1x(tmp_path / "text.h5"))


def test_rgd1_yields_reactant_ts_product_in_ev_without_forces(tmp_path):
    path = tmp_path / "RGD1_CHNO.h5"
    rng = np.random.default_rng(1)
    geometries = {key: rng.normal(size=(4, 3)) for key in ("RG", "TSG", "PG")}
    energies = {"R_E": -114.5, "TS_E": -114.4, "P_E": -114.52}
    with h5py.File(path, "w") as handle:
        group = handle.create_group("MR_100_0")
        group["elements"] = np.array([6, 8, 1, 1])
        for key, value in {**geometries, **energies}.items():
            group[key] = value
        group["Rsmiles"] = b"C=O"
        group["Psmiles"] = b"[CH]O"
        for key in ("R_H", "R_F", "P_H", "P_F", "TS_H", "TS_F"):
            group[key] = -114.0
    frames = list(iter_rgd1(path))
    assert [a.info["role"] for a in frames] == ["reactant", "transition_state", "product"]
    assert np.allclose(frames[1].positions, geometries["TSG"])
    assert frames[1].get_potential_energy() == pytest.approx(-114.4 * units.Hartree)
    assert "forces" not in frames[1].calc.results
    assert frames[0].info["reactant_smiles"] == "C=O"
    assert frames[2].info["product_smiles"] == "[CH]O"
    assert frames[0].info["reaction"] == "MR_100_0"


@pytest.fixture
def oc20_frames():
    frames = make_adsorbate_structures(3, seed=5)
    for atoms in frames:
        tags = np.ones(len(atoms), dtype=int)
        tags[atoms.numbers < 9] = 2
        atoms.set_tags(tags)
    return frames


@pytest.mark.parametrize("compressed", [False, True])
def test_oc20_s2ef_pairs_frames_with_metadata(tmp_path, oc20_frames, compressed):
    lines = "random1331004,44,-0.1478\nrandom2181546,0,-1.25\nrandom2181546,7,-1.25\n"
    if compressed:
        xyz, txt = tmp_path / "0.extxyz.xz", tmp_path / "0.txt.xz"
        with lzma.open(xyz, "wt") as handle:
            ase.io.write(handle, oc20_frames, format="extxyz")
        with lzma.open(txt, "wt") as handle:
            handle.write(lines)
    else:
        xyz, txt = tmp_path / "0.extxyz", tmp_path / "0.txt"
        ase.io.write(xyz, oc20_frames, format="extxyz")
        txt.write_text(lines)
    frames = list(iter_oc20_s2ef(xyz))
    assert len(frames) == 3
    assert frames[0].info["oc20_system_id"] == "random1331004"
    assert frames[2].info["oc20_frame"] == 7
    assert frames[1].info["oc20_reference_energy"] == pytest.approx(-1.25)
    assert frames[2].info["index"] == 2
    for read, written in zip(frames, oc20_frames):
        assert read.get_potential_energy() == pytest.approx(written.get_potential_energy())
        assert np.allclose(read.get_forces(), written.get_forces())
        assert np.array_equal(read.get_tags(), written.get_tags())


def test_oc20_s2ef_errors(tmp_path, oc20_frames):
    xyz = tmp_path / "3.extxyz"
    ase.io.write(xyz, oc20_frames, format="extxyz")
    (tmp_path / "3.txt").write_text("random1,1,-1.0\nrandom2,2,-1.0\n")
    with pytest.raises(InputError, match="2 metadata lines"):
        list(iter_oc20_s2ef(xyz))
    (tmp_path / "bad.txt").write_text("random1;1;-1.0\n")
    with pytest.raises(InputError, match=r"line 1 is 'random1;1;-1\.0'"):
        list(iter_oc20_s2ef(xyz, tmp_path / "bad.txt"))
    with pytest.raises(InputError, match="file not found"):
        list(iter_oc20_s2ef(tmp_path / "9.extxyz"))


def test_oc20_ase_db_rows_keep_results_and_keys(tmp_path, oc20_frames):
    path = tmp_path / "oc20.db"
    with ase.db.connect(path) as db:
        for k, atoms in enumerate(oc20_frames):
            db.write(atoms, sid=f"random{k}", fid=k)
    frames = list(iter_oc20_db(path))
    assert [a.info["sid"] for a in frames] == ["random0", "random1", "random2"]
    assert frames[1].info["db_id"] == 2 and frames[1].info["source"] == "oc20"
    assert np.allclose(frames[1].get_forces(), oc20_frames[1].get_forces())
    (tmp_path / "junk.db").write_text("junk")
    with pytest.raises(InputError, match="not a readable ASE database"):
        list(iter_oc20_db(tmp_path / "junk.db"))


def test_pmechdb_csv_index_reads_geometries_labels_and_columns(tmp_path):
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
        iter_pmechdb(tmp_path / "steps.csv", energy_column="energy_hartree", energy_unit="hartree")
    )
    assert [a.get_chemical_formula() for a in frames] == ["H2O", "H3N"]
    assert frames[0].get_potential_energy() == pytest.approx(-2.0 * units.Hartree)
    np.testing.assert_array_equal(frames[0].get_forces(), np.ones((3, 3)))  # kept from file
    assert frames[0].info["reaction"] == "pm-1" and frames[0].info["role"] == "reactant"
    assert frames[0].info["row"] == 1 and frames[0].info["source"] == "pmechdb"
    assert frames[1].calc is None  # empty energy cell: unlabelled (a pool candidate)
    # Without an energy column the file's own labels are kept.
    plain = list(iter_pmechdb(tmp_path / "steps.csv"))
    assert plain[0].get_potential_energy() == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n", {}, "no column 'xyz'"),
        ("xyz\nmissing.xyz\n", {}, "row 1: geometry file"),
        ("xyz,e\nr.xyz,abc\n", {"energy_column": "e"}, "row 1: energy 'abc' is not a number"),
    ],
)
def test_pmechdb_errors_name_csv_and_row(tmp_path, text, kwargs, message):
    from ase.build import molecule

    ase.io.write(tmp_path / "r.xyz", molecule("H2O"))
    (tmp_path / "steps.csv").write_text(text)
    with pytest.raises(InputError, match=message) as info:
        list(iter_pmechdb(tmp_path / "steps.csv", **kwargs))
    assert "steps.csv" in str(info.value)
