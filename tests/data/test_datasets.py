"""Benchmark data sets on disk: splits, labels, out-of-distribution separation, determinism."""

from __future__ import annotations

import sys

import ase.io
import numpy as np
import pytest
from ase.data import chemical_symbols

from fntk.data import available_datasets, make_dataset, xtb_md
from fntk.data import emt_adsorbates as emt
from fntk.data import xtb_reactions as xtb
from fntk.errors import CapabilityError, InputError

EMT_SIZES = {
    "init": 4,
    "pool": 8,
    "test_id": 4,
    "test_ood-ads": 4,
    "test_ood-cat": 4,
    "test_ood-both": 4,
}


def read_split(files, split):
    return ase.io.read(files.splits[split], ":")


def assert_labelled(frames):
    for atoms in frames:
        assert np.isfinite(atoms.get_potential_energy())
        forces = atoms.get_forces()
        assert forces.shape == (len(atoms), 3) and np.all(np.isfinite(forces))


@pytest.fixture(scope="module")
def emt_files(tmp_path_factory):
    return make_dataset("emt-adsorbates", tmp_path_factory.mktemp("emt"), sizes=EMT_SIZES, seed=1)


def test_registry_lists_both_sets():
    assert available_datasets() == ["emt-adsorbates", "xtb-md", "xtb-reactions"]


def test_emt_splits_are_labelled_and_described(emt_files):
    assert set(emt_files.splits) == set(EMT_SIZES)
    for split, size in EMT_SIZES.items():
        frames = read_split(emt_files, split)
        assert len(frames) == size
        assert_labelled(frames)
        for atoms in frames:
            assert atoms.info["dataset"] == "emt-adsorbates" and atoms.info["split"] == split
            assert str(atoms.info["facet"]) in emt.FACETS
            assert atoms.info["temperature_K"] in emt.TEMPERATURES_K
            assert np.abs(atoms.get_forces()).max() < 30.0
    readme = emt_files.readme.read_text()
    assert "| test_ood-both |" in readme and "max |F|" in readme


def test_e0_references_cover_every_element_of_every_split(emt_files):
    references = ase.io.read(emt_files.e0_reference, ":")
    present = set()
    for split in EMT_SIZES:
        for atoms in read_split(emt_files, split):
            present |= {int(z) for z in atoms.numbers}
    assert [a.info["element"] for a in references] == sorted(present)
    assert_labelled(references)
    for atoms in references:
        assert atoms.info["element"] in atoms.numbers
        if chemical_symbols[atoms.info["element"]] in emt.ID_METALS + emt.OOD_METALS:
            assert len(atoms) == 1 and atoms.pbc.all()  # primitive fcc bulk


def test_emt_ood_splits_exclude_in_distribution_metals_and_adsorbates(emt_files):
    expected = {
        "init": (emt.ID_METALS, emt.ID_ADSORBATES),
        "test_id": (emt.ID_METALS, emt.ID_ADSORBATES),
        "test_ood-ads": (emt.ID_METALS, emt.OOD_ADSORBATES),
        "test_ood-cat": (emt.OOD_METALS, emt.ID_ADSORBATES),
        "test_ood-both": (emt.OOD_METALS, emt.OOD_ADSORBATES),
    }
    assert not set(emt.ID_METALS) & set(emt.OOD_METALS)
    assert not set(emt.ID_ADSORBATES) & set(emt.OOD_ADSORBATES)
    for split, (metals, adsorbates) in expected.items():
        for atoms in read_split(emt_files, split):
            assert atoms.info["metal"] in metals and atoms.info["adsorbate"] in adsorbates
            symbols = set(atoms.get_chemical_symbols())
            assert symbols - {"H", "C", "N", "O"} == {atoms.info["metal"]}


def test_same_seed_same_files_and_splits_independent_of_other_sizes(emt_files, tmp_path):
    again = make_dataset("emt-adsorbates", tmp_path / "a", sizes={**EMT_SIZES, "pool": 0}, seed=1)
    assert "pool" not in again.splits
    for split in ("init", "test_ood-cat"):
        assert again.splits[split].read_bytes() == emt_files.splits[split].read_bytes()
    other = make_dataset("emt-adsorbates", tmp_path / "b", sizes={**EMT_SIZES}, seed=2)
    assert other.splits["init"].read_bytes() != emt_files.splits["init"].read_bytes()


def test_bad_names_are_rejected(tmp_path):
    with pytest.raises(InputError, match="unknown data set 'oc20'; choose one of") as info:
        make_dataset("oc20", tmp_path)
    assert all(name in str(info.value) for name in ("emt-adsorbates", "xtb-md", "xtb-reactions"))
    with pytest.raises(InputError, match="has no split 'test_ood'"):
        make_dataset("emt-adsorbates", tmp_path, sizes={"test_ood": 3})


def test_xtb_reactions_without_xtb_names_the_package(tmp_path, monkeypatch):
    for module in ("xtb", "xtb.ase", "xtb.ase.calculator"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(CapabilityError, match="pip install xtb"):
        make_dataset("xtb-reactions", tmp_path, sizes={"pool": 2})


def test_xtb_reactions_splits(tmp_path):
    pytest.importorskip("xtb")
    sizes = {"init": 3, "pool": 6, "test_id": 3, "test_ood": 5}
    files = make_dataset("xtb-reactions", tmp_path / "a", sizes=sizes, seed=3)
    for split, size in sizes.items():
        frames = read_split(files, split)
        assert len(frames) == size
        assert_labelled(frames)
        names = xtb.OOD_MOLECULES if split == "test_ood" else xtb.ID_MOLECULES
        for atoms in frames:
            assert atoms.info["molecule"] in names and atoms.info["kind"] in xtb.KINDS
            assert set(atoms.get_chemical_symbols()) <= {"H", "C", "N", "O"}
    assert not set(xtb.ID_MOLECULES) & set(xtb.OOD_MOLECULES)
    again = make_dataset("xtb-reactions", tmp_path / "b", sizes=sizes, seed=3)
    # Geometries are a pure function of the seed; xtb's OpenMP reductions may change its labels
    # in the last digits from run to run when it uses several threads.
    for first, second in zip(read_split(files, "pool"), read_split(again, "pool"), strict=True):
        assert np.array_equal(first.positions, second.positions)
        assert first.get_potential_energy() == pytest.approx(
            second.get_potential_energy(), abs=1e-8
        )
        np.testing.assert_allclose(first.get_forces(), second.get_forces(), atol=1e-7)


def test_xtb_md_molecule_mix_is_imbalanced_or_balanced():
    counts = xtb_md.molecule_counts(xtb_md.POOL_MOLECULES, False, 1000)
    assert sum(counts.values()) == 1000
    dominant = sum(counts[m] for m in xtb_md.DOMINANT_SHARES)
    others = {n for m, n in counts.items() if m not in xtb_md.DOMINANT_SHARES}
    assert dominant == 720 and others == {21, 22}
    even = xtb_md.molecule_counts(xtb_md.OOD_MOLECULES, True, 15)
    assert sum(even.values()) == 15 and set(even.values()) == {2, 3}


def test_xtb_md_splits(tmp_path):
    pytest.importorskip("xtb")
    sizes = {"init": 2, "pool": 60, "test_id": 3, "test_balanced": 2, "test_rare": 2, "test_ood": 2}
    files = make_dataset("xtb-md", tmp_path, sizes=sizes, seed=3)
    frames = {split: read_split(files, split) for split in sizes}
    for split, size in sizes.items():
        assert len(frames[split]) == size
        assert_labelled(frames[split])
        names = xtb_md.OOD_MOLECULES if split == "test_ood" else xtb_md.POOL_MOLECULES
        assert all(a.info["molecule"] in names for a in frames[split])
    assert not set(xtb_md.POOL_MOLECULES) & set(xtb_md.OOD_MOLECULES)
    pool = frames["pool"]
    # 2% rare (one frame of 60), the rest along 50-frame trajectories 2 fs apart
    assert [a.info["kind"] for a in pool].count("md") == 59 and pool[-1].info["rare"]
    assert max(np.bincount([a.info["trajectory"] for a in pool])) <= 50
    assert [a.info["kind"] for a in frames["test_rare"]] == ["hot", "stretch"]
    for atoms in frames["test_rare"]:
        assert np.linalg.norm(atoms.get_forces(), axis=1).max() <= xtb_md.MAX_RARE_FORCE
    # the labels are GFN2-xTB's at the stored geometry (written with 6 decimals)
    atoms = pool[0].copy()
    atoms.calc = xtb.xtb_calculator()
    np.testing.assert_allclose(atoms.get_forces(), pool[0].get_forces(), atol=1e-4)
    assert "| test_rare |" in files.readme.read_text()
