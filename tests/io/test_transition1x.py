"""Transition1x as released: data/ plus train/val/test soft links, end points with a hash."""

from __future__ import annotations

import numpy as np
import pytest

from fntk.errors import InputError
from fntk.io import count_frames, iter_chunks
from fntk.io.readers import iter_transition1x

h5py = pytest.importorskip("h5py")


def test_path_images_once_with_end_points_marked(t1x_file):
    path, written = t1x_file
    frames = list(iter_transition1x(path, split="train"))
    reactions = written["train"]
    assert len(frames) == sum(len(r.positions) for r in reactions)  # no R/TS/P duplicates
    first = reactions[0]
    mine = [a for a in frames if a.info["reaction"] == first.name]
    roles = [a.info["role"] for a in mine]
    expected = ["path"] * len(first.positions)
    expected[0], expected[first.ts_image], expected[-1] = "reactant", "transition_state", "product"
    assert roles == expected
    assert [a.info["image"] for a in mine] == list(range(len(first.positions)))
    ts = mine[first.ts_image]
    np.testing.assert_allclose(ts.positions, first.positions[first.ts_image])
    assert ts.get_potential_energy() == pytest.approx(first.energies[first.ts_image])
    np.testing.assert_allclose(ts.get_forces(), first.forces[first.ts_image])
    assert ts.info["hash"] == f"{first.name}-transition_state-hash"
    assert ts.info["record"] == f"C2H4O/{first.name}/{first.ts_image}"
    assert ts.info["split"] == "train" and ts.info["dataset"] == "transition1x"
    assert all("hash" not in a.info for a in mine if a.info["role"] == "path")


def test_data_is_the_union_of_the_linked_splits(t1x_file):
    path, written = t1x_file
    everything = {(a.info["formula"], a.info["reaction"]) for a in iter_transition1x(path)}
    by_split = {(r.formula, r.name) for rs in written.values() for r in rs}
    assert everything == by_split
    with h5py.File(path) as handle:  # the splits are soft links, not copies
        link = handle["test/CH4O"].get("rxn0200", getlink=True)
        assert isinstance(link, h5py.SoftLink) and link.path == "/data/CH4O/rxn0200"


def test_release_without_hash_reads(t1x_nohash):
    frames = list(iter_transition1x(t1x_nohash, split="val"))
    assert {a.info["role"] for a in frames} == {"reactant", "transition_state", "product"}
    assert all("hash" not in a.info for a in frames)


def test_include_path_false_yields_reactant_ts_product(t1x_file):
    path, _ = t1x_file
    frames = list(iter_transition1x(path, split="val", include_path=False))
    assert [a.info["role"] for a in frames] == ["reactant", "transition_state", "product"]
    assert [a.info["image"] for a in frames] == [-1, -1, -1]
    assert frames[1].info["record"] == "CH4O/rxn0100/transition_state"


def test_registry_detects_the_file_and_takes_split_option(t1x_file):
    path, written = t1x_file
    n_test = sum(len(r.positions) for r in written["test"])
    spec = f"transition1x,split=test:{path}"
    assert count_frames([spec]) == n_test
    assert count_frames([str(path)]) == sum(len(r.positions) for rs in written.values() for r in rs)
    chunks = list(iter_chunks([spec], 3))
    assert {a.info["split"] for c in chunks for a in c.structures} == {"test"}
    assert chunks[0].source_files[0] == spec
    assert count_frames([f"transition1x,split=test,include_path=false:{path}"]) == 3


def test_errors_name_split_group_and_option(t1x_file, tmp_path):
    path, _ = t1x_file
    with pytest.raises(InputError, match=r"no split group 'valid'.*choose one of: data"):
        list(iter_transition1x(path, split="valid"))
    with pytest.raises(InputError, match=r"format 'transition1x' has no option 'splt'"):
        count_frames([f"transition1x,splt=test:{path}"])
    with pytest.raises(InputError, match=r"include_path='maybe' is not a bool"):
        count_frames([f"transition1x,include_path=maybe:{path}"])
    broken = tmp_path / "broken.h5"
    with h5py.File(broken, "w") as handle:
        group = handle.create_group("data/CH4/rxn1")
        group["atomic_numbers"] = np.array([6, 1, 1, 1, 1])
        group["positions"] = np.zeros((1, 5, 3))
    with pytest.raises(InputError, match=r"/data/CH4/rxn1 has no dataset 'wB97x_6-31G\(d\)"):
        list(iter_transition1x(broken))
