"""ASE databases streamed row by row: fairchem's .aselmdb (ase-db-backends) and SQLite."""

from __future__ import annotations

import ase.db
import numpy as np
import pytest
from ase.constraints import FixAtoms

from fntk.errors import InputError
from fntk.io import count_frames, iter_chunks
from fntk.io.readers import iter_ase_db


@pytest.fixture
def frames(oc20_builders):
    frames = oc20_builders[0](3, 9)
    for atoms in frames:
        atoms.set_constraint(FixAtoms(indices=[0, 1]))
    return frames


@pytest.mark.parametrize("suffix", [".aselmdb", ".db"])
def test_rows_keep_results_constraints_keys_and_data(tmp_path, frames, suffix):
    if suffix == ".aselmdb":
        pytest.importorskip("ase_db_backends")
    path = tmp_path / f"oc20{suffix}"
    with ase.db.connect(path) as db:  # fairchem writes .aselmdb through the same ASE interface
        for k, atoms in enumerate(frames):
            db.write(atoms, sid=f"random{k}", data={"fid": k, "ref_energy": -0.5 * k, "nested": {}})
    got = list(iter_ase_db(path))
    assert [a.info["sid"] for a in got] == ["random0", "random1", "random2"]
    assert [a.info["fid"] for a in got] == [0, 1, 2]  # row.data into info, as fairchem
    assert "nested" not in got[0].info  # cannot be written back as extended XYZ
    assert got[1].info["record"] == "id2" and got[1].info["db_id"] == 2
    np.testing.assert_allclose(got[1].calc.results["forces"], frames[1].calc.results["forces"])
    assert got[1].get_potential_energy() == pytest.approx(frames[1].get_potential_energy())
    assert got[1].constraints[0].index.tolist() == [0, 1]
    np.testing.assert_array_equal(got[2].get_tags(), frames[2].get_tags())
    # through the registry (by extension), with a query option and a cheap count
    assert count_frames([str(path)]) == 3
    assert count_frames([f"ase-db,query=sid=random1:{path}"]) == 1
    (chunk,) = list(iter_chunks([f"ase-db,query=sid=random1:{path}"], 8))
    assert [a.info["sid"] for a in chunk.structures] == ["random1"]


def test_rows_arrive_one_at_a_time(tmp_path, frames):
    path = tmp_path / "many.db"
    with ase.db.connect(path) as db:
        for atoms in frames:
            db.write(atoms)
    stream = iter_ase_db(path)
    first = next(stream)  # a generator: rows arrive one at a time
    assert first.info["db_id"] == 1
    stream.close()


def test_bad_files_are_input_errors(tmp_path):
    (tmp_path / "junk.db").write_text("junk")
    with pytest.raises(InputError, match="not a readable ASE database"):
        list(iter_ase_db(tmp_path / "junk.db"))
    pytest.importorskip("ase_db_backends")
    (tmp_path / "junk.aselmdb").write_bytes(b"junk" * 100)
    with pytest.raises(InputError, match="not a readable ASE database"):
        list(iter_ase_db(tmp_path / "junk.aselmdb"))
    with pytest.raises(InputError, match="file not found"):
        list(iter_ase_db(tmp_path / "none.aselmdb"))


def test_sqlite_rows_come_in_pages_in_id_order(tmp_path, frames, monkeypatch):
    import fntk.io.readers.ase_db as module

    monkeypatch.setattr(module, "SQLITE_PAGE", 2)
    path = tmp_path / "paged.db"
    with ase.db.connect(path) as db:
        for k in range(5):
            db.write(frames[k % 3], k=k)
    assert [a.info["k"] for a in iter_ase_db(path)] == [0, 1, 2, 3, 4]
    assert [a.info["k"] for a in iter_ase_db(path, query="k>=2")] == [2, 3, 4]
