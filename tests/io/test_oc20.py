"""OC20 S2EF shards as fairchem releases them: ``random<sid>,frame<fid>,<ref>`` lines, .xz."""

from __future__ import annotations

import lzma

import ase.io
import numpy as np
import pytest
from ase.constraints import FixAtoms

from fntk.errors import InputError
from fntk.io import count_frames, iter_chunks
from fntk.io.readers import iter_oc20_s2ef


def test_compressed_shard_yields_sid_fid_labels_tags_and_fixed_atoms(oc20_shard):
    path, written = oc20_shard
    frames = list(iter_oc20_s2ef(path))
    assert [(a.info["sid"], a.info["fid"]) for a in frames] == [
        (1331004, 44),
        (2181546, 0),
        (2181546, 7),
    ]
    assert frames[0].info["record"] == "random1331004,frame44"
    assert frames[0].info["oc20_reference_energy"] == pytest.approx(-0.1478)
    assert frames[0].info["dataset"] == "oc20"
    for got, want in zip(frames, written):
        assert got.get_potential_energy() == pytest.approx(want.calc.results["energy"])
        assert got.calc.results["free_energy"] == pytest.approx(want.calc.results["free_energy"])
        np.testing.assert_allclose(
            got.calc.results["forces"], want.calc.results["forces"], atol=1e-8
        )
        np.testing.assert_array_equal(got.get_tags(), want.get_tags())
        (constraint,) = got.constraints
        assert isinstance(constraint, FixAtoms)
        np.testing.assert_array_equal(constraint.index, np.flatnonzero(want.info["fixed_mask"]))
        assert got.pbc.all()


def test_adsorption_option_subtracts_the_reference_energy(oc20_shard):
    path, _ = oc20_shard
    total = next(iter_oc20_s2ef(path))
    adsorption = next(iter_oc20_s2ef(path, adsorption=True))
    assert adsorption.get_potential_energy() == pytest.approx(total.get_potential_energy() + 0.1478)


def test_registry_reads_shard_by_extension_and_counts_from_the_txt(oc20_shard):
    path, _ = oc20_shard
    assert count_frames([str(path)]) == 3
    (chunk,) = list(iter_chunks([str(path)], 10))
    assert chunk.source_files == [str(path)] * 3
    assert [a.info["fid"] for a in chunk.structures] == [44, 0, 7]


def test_plain_extxyz_with_plain_txt_and_bare_number_lines(tmp_path, oc20_builders):
    oc20_frames, oc20_extxyz_text, _ = oc20_builders
    frames = oc20_frames(2)
    (tmp_path / "7.extxyz").write_text(oc20_extxyz_text(frames))
    (tmp_path / "7.txt").write_text("random12,frame3,-1.0\n12,4\n")  # 2 fields: test-set style
    (chunk,) = iter_chunks([str(tmp_path / "7.extxyz")], 5)
    got = chunk.structures
    assert [a.info["fid"] for a in got] == [3, 4]
    assert "oc20_reference_energy" not in got[1].info


def test_extxyz_without_txt_is_left_to_ase(tmp_path, oc20_builders):
    frames = oc20_builders[0](2)
    ase.io.write(tmp_path / "plain.extxyz", frames)
    (chunk,) = iter_chunks([str(tmp_path / "plain.extxyz")], 5)
    got = chunk.structures
    assert len(got) == 2 and "sid" not in got[0].info


def test_errors_name_the_file_and_line(tmp_path, oc20_builders):
    oc20_frames, oc20_extxyz_text, OC20_LINES = oc20_builders
    frames = oc20_frames(3)
    xyz = tmp_path / "3.extxyz"
    xyz.write_text(oc20_extxyz_text(frames))
    (tmp_path / "3.txt").write_text("random1,frame1,-1.0\nrandom2,frame2,-1.0\n")
    with pytest.raises(InputError, match="only 2 metadata lines for more frames"):
        list(iter_oc20_s2ef(xyz))
    (tmp_path / "bad.txt").write_text("random1;frame1;-1.0\n")
    with pytest.raises(InputError, match=r"bad\.txt: line 1 is 'random1;frame1;-1\.0'"):
        list(iter_oc20_s2ef(xyz, txt=str(tmp_path / "bad.txt")))
    (tmp_path / "long.txt").write_text(OC20_LINES + "random9,frame9,0.0\n")
    with pytest.raises(InputError, match="more metadata lines than frames"):
        list(iter_oc20_s2ef(xyz, txt=str(tmp_path / "long.txt")))
    with pytest.raises(InputError, match="file not found"):
        list(iter_oc20_s2ef(tmp_path / "9.extxyz"))


def test_explicit_format_with_txt_option(tmp_path, oc20_builders):
    oc20_frames, oc20_extxyz_text, OC20_LINES = oc20_builders
    frames = oc20_frames(3)
    xyz = tmp_path / "frames.extxyz.xz"
    with lzma.open(xyz, "wt") as handle:
        handle.write(oc20_extxyz_text(frames))
    (tmp_path / "meta.txt").write_text(OC20_LINES)
    spec = f"oc20-s2ef,txt={tmp_path / 'meta.txt'}:{xyz}"
    (chunk,) = list(iter_chunks([spec], 10))
    assert chunk.source_files == [spec] * 3
    assert chunk.structures[2].info["record"] == "random2181546,frame7"


def test_compressed_shard_without_its_txt_says_so(oc20_shard):
    path, _ = oc20_shard
    (path.parent / "0.txt.xz").unlink()
    with pytest.raises(InputError, match=r"0\.txt\.xz: file not found \(S2EF shards come in pairs"):
        list(iter_chunks([str(path)], 4))
