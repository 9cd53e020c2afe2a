"""The input-format registry and the FORMAT[,KEY=VALUE...]:PATH source syntax."""

from __future__ import annotations

import ase.io
import pytest
from ase.build import molecule

from fntk.errors import InputError
from fntk.io import count_frames, expand_paths, iter_chunks
from fntk.io.formats import (
    FORMATS,
    Source,
    describe_formats,
    parse_source,
    register_format,
)


def test_parse_source_prefix_options_and_plain_paths():
    assert parse_source("t1x.h5") == Source("t1x.h5")
    assert parse_source("transition1x,split=test:data/t1x.h5") == Source(
        "data/t1x.h5", "transition1x", {"split": "test"}
    )
    assert parse_source("extxyz:frames.txt") == Source("frames.txt", "extxyz")  # an ASE format
    assert parse_source("notaformat:file.xyz") == Source("notaformat:file.xyz")
    assert parse_source("x.xyz", default_format="extxyz") == Source("x.xyz", "extxyz")
    source = Source("a.h5", "transition1x", {"split": "val", "include_path": "false"})
    assert parse_source(source.spec()) == source
    with pytest.raises(InputError, match="reader option 'split' is not KEY=VALUE"):
        parse_source("transition1x,split:a.h5")


def test_registry_refuses_duplicates():
    def read(path, *, flag: bool = False):
        yield from ()

    with pytest.raises(ValueError, match="'transition1x' is registered twice"):
        register_format("transition1x", (".t1x",), read, "dup")
    with pytest.raises(ValueError, match=r"extension '\.lmdb' of 'mine' is already claimed"):
        register_format("mine", (".lmdb",), read, "dup")
    assert "mine" not in FORMATS


def test_every_format_has_help_and_options_from_the_signature():
    assert FORMATS.get("transition1x").options == {"split": str, "include_path": bool}
    text = describe_formats()
    for name in ("oc20-s2ef", "oc20-lmdb", "ase-db", "transition1x", "rgd1", "csv-index"):
        assert name in text


def test_ase_format_prefix_and_plain_files_still_work(tmp_path):
    ase.io.write(tmp_path / "frames.txt", [molecule("H2O"), molecule("NH3")], format="extxyz")
    spec = f"extxyz:{tmp_path / 'frames.txt'}"
    assert count_frames([spec]) == 2
    (chunk,) = list(iter_chunks([spec], 5))
    assert chunk.source_files == [spec, spec]
    with pytest.raises(InputError, match="takes no reader options"):
        list(iter_chunks([f"extxyz,a=b:{tmp_path / 'frames.txt'}"], 5))


def test_globs_keep_the_prefix_and_folders_need_a_format(tmp_path):
    for name in ("a.txt", "b.txt"):
        ase.io.write(tmp_path / name, molecule("H2O"), format="extxyz")
    assert expand_paths([f"extxyz:{tmp_path}/*.txt"]) == [
        f"extxyz:{tmp_path / 'a.txt'}",
        f"extxyz:{tmp_path / 'b.txt'}",
    ]
    with pytest.raises(InputError, match=r"is a directory.*folders are read by: oc20-lmdb"):
        expand_paths([str(tmp_path)])
    with pytest.raises(InputError, match="file not found"):
        expand_paths(["transition1x:missing.h5"])


def test_unknown_h5_layout_is_left_to_ase_with_a_clear_error(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = [1, 2]
    with pytest.raises(InputError, match=r"other\.h5"):
        list(iter_chunks([str(tmp_path / "other.h5")], 5))


def test_index_slicing_on_a_registered_format(t1x_file):
    path, _ = t1x_file
    from fntk.io import iter_frames

    frames = list(iter_frames([f"transition1x,split=train:{path}"], index="1:4"))
    assert [a.info["image"] for _, _, a in frames] == [1, 2, 3]
