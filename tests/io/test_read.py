"""Structure I/O: chunked streaming, provenance, labels, atomic writing, and bad-input errors."""

from __future__ import annotations

import os

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator

from fntk.errors import InputError
from fntk.io import (
    count_frames,
    iter_chunks,
    iter_frames_at,
    read_frame_at,
    read_labels,
    read_structures,
    write_extxyz,
)


def labelled(atoms: Atoms, energy: float, seed: int) -> Atoms:
    atoms = atoms.copy()
    forces = np.random.default_rng(seed).normal(size=(len(atoms), 3))
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


@pytest.fixture
def pool_files(tmp_path):
    a = [labelled(molecule(name), -float(i), i) for i, name in enumerate(["H2O", "CH4", "NH3"])]
    b = [labelled(bulk("Cu", "fcc", a=3.6, cubic=True), -14.0, 7)]
    path_a, path_b = tmp_path / "a.xyz", tmp_path / "b.traj"
    ase.io.write(path_a, a)
    ase.io.write(path_b, b)
    return [str(path_a), str(path_b)], a + b


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 10])
def test_chunks_cover_every_frame_with_provenance(pool_files, chunk_size):
    paths, originals = pool_files
    chunks = list(iter_chunks(paths, chunk_size))
    assert all(len(c) <= chunk_size for c in chunks)
    structures = [s for c in chunks for s in c.structures]
    files = [f for c in chunks for f in c.source_files]
    frames = [i for c in chunks for i in c.frame_indices]
    indices = np.concatenate([c.global_indices for c in chunks])
    assert files == [paths[0]] * 3 + [paths[1]]
    assert frames == [0, 1, 2, 0]
    assert indices.tolist() == [0, 1, 2, 3]
    for got, want in zip(structures, originals):
        assert got.get_chemical_formula() == want.get_chemical_formula()
        np.testing.assert_allclose(got.positions, want.positions)


def test_a_frame_read_at_its_offset_is_the_frame_read_in_order(pool_files, tmp_path):
    paths, _ = pool_files
    text = tmp_path / "ünïcode.extxyz"  # multi-byte characters before later frames
    frames = [molecule("CH3OH"), molecule("H2O")]
    frames[0].info["label"] = "ethanöl-like"
    ase.io.write(text, frames)
    located = list(iter_frames_at([*paths, str(text)]))
    assert [offset is None for *_, offset in located] == [False] * 3 + [True] + [False] * 2
    for file, _, atoms, offset in located:
        if offset is not None:
            alone = read_frame_at(file, offset)
            assert alone.get_chemical_formula() == atoms.get_chemical_formula()
            np.testing.assert_array_equal(alone.positions, atoms.positions)
            assert alone.info == atoms.info
            if atoms.calc is not None:
                assert alone.get_potential_energy() == atoms.get_potential_energy()
                np.testing.assert_array_equal(alone.get_forces(), atoms.get_forces())


def test_round_trip_keeps_geometry_labels_and_info(pool_files, tmp_path):
    paths, originals = pool_files
    structures = read_structures(paths).structures
    for i, atoms in enumerate(structures):
        atoms.info["fntk_rank"] = i
    out = tmp_path / "out" / "selected.xyz"
    write_extxyz(out, structures, protected=paths)
    back = read_structures([str(out)]).structures
    assert [a.info["fntk_rank"] for a in back] == [0, 1, 2, 3]
    for got, want in zip(back, originals):
        np.testing.assert_allclose(got.positions, want.positions)
        np.testing.assert_allclose(got.cell, want.cell)
        labels = read_labels(got, file=str(out), index=0)
        assert labels.energy == pytest.approx(want.get_potential_energy())
        np.testing.assert_allclose(labels.forces, want.get_forces(), atol=1e-7)
    assert not [f for f in os.listdir(out.parent) if f.endswith(".tmp")]


def test_inputs_are_never_modified(pool_files):
    paths, _ = pool_files
    before = [open(p, "rb").read() for p in paths]
    list(iter_chunks(paths, 2))
    with pytest.raises(InputError, match="refusing to overwrite an input file"):
        write_extxyz(paths[0], [molecule("H2O")], protected=paths)
    assert [open(p, "rb").read() for p in paths] == before


def test_labels_from_named_keys(tmp_path):
    atoms = molecule("H2O")
    atoms.info["REF_energy"] = -3.5
    atoms.arrays["REF_forces"] = np.ones((3, 3))
    labels = read_labels(
        atoms, file="x.xyz", index=4, energy_key="REF_energy", forces_key="REF_forces"
    )
    assert labels.energy == -3.5
    np.testing.assert_array_equal(labels.forces, np.ones((3, 3)))


def test_count_frames_and_globs(pool_files, tmp_path):
    paths, _ = pool_files
    assert count_frames([str(tmp_path / "*.xyz"), paths[1]]) == 4


def write_text(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def h2o_with(**changes) -> Atoms:
    atoms = molecule("H2O")
    for key, value in changes.items():
        setattr(atoms, key, value)
    return atoms


# Each case: how to make the bad input, and a regular expression the one-line error must match.
# Every message must also name the file (checked below).
BAD_STRUCTURE_FILES = {
    "missing file": (lambda tmp: str(tmp / "nope.xyz"), r"nope\.xyz: file not found"),
    "empty file": (lambda tmp: write_text(tmp, "empty.xyz", ""), r"empty\.xyz: file is empty"),
    "unknown format": (
        lambda tmp: write_text(tmp, "pool.weird", "1\n\nH 0 0 0\n"),
        r"ASE cannot tell the file format",
    ),
    "garbage content": (
        lambda tmp: write_text(tmp, "junk.xyz", "hello\nworld\n"),
        r"junk\.xyz, frame 0: line 1: expected the atom count of a frame, found 'hello'",
    ),
    "truncated frame": (
        lambda tmp: write_text(tmp, "cut.xyz", "3\n\nO 0 0 0\nH 0 0 1\n"),
        r"cut\.xyz, frame 0: the file ends inside the frame: 2 of its 3 atom lines",
    ),
    "non-finite position": (
        lambda tmp: write_text(tmp, "nan.xyz", "2\n\nH 0 0 0\nH 0 0 nan\n"),
        r"nan\.xyz, frame 0: atom 1 has a non-finite position",
    ),
    "overlapping atoms": (
        lambda tmp: write_text(tmp, "clash.xyz", "2\n\nH 0 0 0\nH 0 0 0.1\n"),
        r"clash\.xyz, frame 0: atoms 0 and 1 overlap \(0\.100 Angstrom apart",
    ),
    "overlap with a periodic image": (
        lambda tmp: _write(tmp, "image.xyz", [Atoms("H", cell=[0.3, 5, 5], pbc=True)]),
        r"image\.xyz, frame 0: atoms 0 and 0 overlap",
    ),
    "degenerate periodic cell": (
        lambda tmp: write_text(
            tmp, "cell.xyz", '1\nLattice="0 0 0 0 5 0 0 0 5" pbc="T T T"\nH 0 0 0\n'
        ),
        r"cell\.xyz, frame 0: periodic along xyz but the cell is degenerate",
    ),
    "glob matching nothing": (lambda tmp: str(tmp / "*.none"), r"matches no file"),
    "directory instead of file": (lambda tmp: str(tmp), r"is a directory"),
}


def _write(tmp, name, structures):
    path = tmp / name
    ase.io.write(path, structures)
    return str(path)


@pytest.mark.parametrize("case", sorted(BAD_STRUCTURE_FILES))
def test_bad_structure_files_raise_one_clear_error(tmp_path, case):
    make, pattern = BAD_STRUCTURE_FILES[case]
    path = make(tmp_path)
    with pytest.raises(InputError, match=pattern) as info:
        list(iter_chunks([path], 4))
    assert "\n" not in str(info.value)


def test_second_bad_frame_is_named(tmp_path):
    good, bad = molecule("H2O"), molecule("H2O")
    bad.positions[2] = bad.positions[1]
    path = _write(tmp_path, "two.xyz", [good, bad])
    with pytest.raises(InputError, match=r"two\.xyz, frame 1: atoms 1 and 2 overlap"):
        list(iter_chunks([path], 1))


def test_unknown_element_for_the_model(tmp_path):
    path = _write(
        tmp_path, "u.xyz", [molecule("H2O"), Atoms("UH", positions=[[0, 0, 0], [0, 0, 2]])]
    )
    with pytest.raises(InputError, match=r"u\.xyz, frame 1: element\(s\) U not supported"):
        list(iter_chunks([path], 8, species=frozenset({1, 8})))


BAD_LABELS = {
    "no energy anywhere": (dict(), {}, r"no reference energy .*--energy-key"),
    "forces key missing": (
        dict(energy=1.0),
        {"forces_key": "REF_forces"},
        r"no reference forces: the frame has no array 'REF_forces'",
    ),
    "forces of wrong shape": (
        dict(energy=1.0, forces=np.zeros((2, 3))),
        {},
        r"forces have shape \(2, 3\), expected \(3, 3\)",
    ),
    "non-finite energy": (dict(energy=np.nan, forces=np.zeros((3, 3))), {}, r"energy is nan"),
    "non-finite forces": (
        dict(energy=1.0, forces=np.full((3, 3), np.inf)),
        {},
        r"forces contain non-finite values",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_bad_labels_raise_one_clear_error(case):
    results, keys, pattern = BAD_LABELS[case]
    atoms = molecule("H2O")
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    with pytest.raises(InputError, match=r"^data\.xyz, frame 5: " + pattern):
        read_labels(atoms, file="data.xyz", index=5, **keys)


def test_energy_key_that_is_not_a_number():
    atoms = molecule("H2O")
    atoms.info["E"] = "high"
    with pytest.raises(InputError, match=r"energy 'high' is not a number"):
        read_labels(atoms, file="d.xyz", index=0, energy_key="E")
