"""RGD1 as released: RGD1_CHNO.h5 reactions and RGD1_RPs.h5 molecules, energies only."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import molecule

from fntk.errors import InputError
from fntk.io import count_frames, iter_chunks
from fntk.io.readers import iter_rgd1, iter_rgd1_molecules

h5py = pytest.importorskip("h5py")


@pytest.fixture
def rgd1_files(tmp_path):
    """Both files with the publisher's keys (parse_data.py), bytes SMILES and Hartree energies."""
    rng = np.random.default_rng(3)
    chno, rps = tmp_path / "RGD1_CHNO.h5", tmp_path / "RGD1_RPs.h5"
    reactions = {}
    with h5py.File(chno, "w") as handle:
        for name, base in (("MR_100_0", "CH3OH"), ("MR_100_1", "H2CO")):
            mol = molecule(base)
            group = handle.create_group(name)
            group["elements"] = mol.numbers
            geometries = {
                k: mol.positions + rng.normal(scale=0.05, size=mol.positions.shape)
                for k in ("RG", "TSG", "PG")
            }
            energies = {"R_E": -115.1, "TS_E": -115.0 + 0.01 * len(reactions), "P_E": -115.12}
            for key, value in {**geometries, **energies}.items():
                group[key] = value
            for key in ("R_H", "R_F", "P_H", "P_F", "TS_H", "TS_F"):
                group[key] = -114.9
            group["Rsmiles"] = b"CO"
            group["Psmiles"] = b"C=O.[H][H]"
            reactions[name] = (mol.numbers, geometries, energies)
    molecules = {}
    with h5py.File(rps, "w") as handle:
        for k, base in enumerate(("CH3OH", "H2CO", "H2")):
            mol = molecule(base)
            group = handle.create_group(f"mol{k}")
            group["elements"] = mol.numbers
            group["DFTG"] = mol.positions
            group["DFT_SPE"] = -100.0 - k
            group["xTBG"] = mol.positions * 1.01
            group["xTB_SPE"] = -10.0 - k
            group["_id"] = ["CO", "C=O", "[H][H]"][k].encode()
            molecules[f"mol{k}"] = mol
    return chno, rps, reactions, molecules


def test_chno_yields_labelled_transition_states_only_by_default(rgd1_files):
    chno, _, reactions, _ = rgd1_files
    frames = list(iter_rgd1(chno))
    assert [a.info["record"] for a in frames] == [
        "MR_100_0/transition_state",
        "MR_100_1/transition_state",
    ]
    numbers, geometries, energies = reactions["MR_100_1"]
    ts = frames[1]
    np.testing.assert_allclose(ts.positions, geometries["TSG"])
    np.testing.assert_array_equal(ts.numbers, numbers)
    assert ts.get_potential_energy() == pytest.approx(energies["TS_E"] * units.Hartree)
    assert "forces" not in ts.calc.results
    assert ts.info["labels"] == "energy"
    assert ts.info["reactant_smiles"] == "CO" and ts.info["product_smiles"] == "C=O.[H][H]"


def test_chno_endpoints_are_unlabelled_unoptimised_geometries(rgd1_files):
    chno, _, reactions, _ = rgd1_files
    frames = list(iter_rgd1(chno, endpoints=True))
    assert [a.info["role"] for a in frames[:3]] == ["reactant", "transition_state", "product"]
    assert frames[0].calc is None and frames[0].info["labels"] == "none"
    np.testing.assert_allclose(frames[2].positions, reactions["MR_100_0"][1]["PG"])


def test_rps_yields_dft_or_xtb_optimised_molecules(rgd1_files):
    _, rps, _, molecules = rgd1_files
    frames = list(iter_rgd1_molecules(rps))
    assert [a.info["molecule"] for a in frames] == ["mol0", "mol1", "mol2"]
    assert frames[2].info["molecule_id"] == "[H][H]"
    assert frames[1].get_potential_energy() == pytest.approx(-101.0 * units.Hartree)
    np.testing.assert_allclose(frames[1].positions, molecules["mol1"].positions)
    assert "forces" not in frames[1].calc.results and frames[1].info["labels"] == "energy"
    xtb = list(iter_rgd1_molecules(rps, level="xtb"))
    assert xtb[0].get_potential_energy() == pytest.approx(-10.0 * units.Hartree)
    with pytest.raises(InputError, match="level 'b3lyp' is not dft or xtb"):
        list(iter_rgd1_molecules(rps, level="b3lyp"))


def test_registry_tells_the_two_files_apart(rgd1_files):
    chno, rps, _, _ = rgd1_files
    assert count_frames([str(chno)]) == 2
    assert count_frames([f"rgd1,endpoints=true:{chno}"]) == 6
    assert count_frames([str(rps)]) == 3
    (chunk,) = list(iter_chunks([str(rps), str(chno)], 10))
    assert [a.info.get("molecule", a.info.get("reaction")) for a in chunk.structures] == [
        "mol0",
        "mol1",
        "mol2",
        "MR_100_0",
        "MR_100_1",
    ]


def test_wrong_file_for_reader_says_which_file(rgd1_files):
    chno, rps, _, _ = rgd1_files
    with pytest.raises(InputError, match=r"has no dataset 'TSG' \(is this RGD1_CHNO.h5\?\)"):
        list(iter_rgd1(rps))
    with pytest.raises(InputError, match=r"has no dataset 'DFTG' \(is this RGD1_RPs.h5\?\)"):
        list(iter_rgd1_molecules(chno))


def test_energy_only_frames_enter_a_labelled_set_only_when_asked(rgd1_files):
    from fntk.learn import LabelledSet

    chno, _, reactions, _ = rgd1_files
    with pytest.raises(InputError, match="no reference forces"):
        LabelledSet.from_files([str(chno)])
    split = LabelledSet.from_files([str(chno)], require_forces=False)
    assert not split.has_forces and np.isnan(split.forces[0]).all()
    assert split.energies[0] == pytest.approx(reactions["MR_100_0"][2]["TS_E"] * units.Hartree)
