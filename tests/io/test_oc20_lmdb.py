"""fairchem LMDBs of pickled torch_geometric Data, read without torch_geometric (restricted)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from ase.constraints import FixAtoms

from fntk.errors import InputError
from fntk.io import count_frames, iter_chunks
from fntk.io.readers import iter_oc20_lmdb

lmdb = pytest.importorskip("lmdb")


def write_lmdb(path, records: list[bytes], *, length: bool = True) -> None:
    """As fairchem's preprocess_ef.py: keys b"0".., then b"length" with the pickled count."""
    env = lmdb.open(str(path), map_size=2**26, subdir=False, meminit=False, map_async=True)
    with env.begin(write=True) as txn:
        for i, record in enumerate(records):
            txn.put(f"{i}".encode("ascii"), record)
        if length:
            txn.put(b"length", pickle.dumps(len(records), protocol=-1))
    env.sync()
    env.close()


def s2ef_fields(frames, k: int) -> dict[str, object]:
    """The fields fairchem's AtomsToGraphs + preprocess_ef.py store for frame ``k``."""
    atoms = frames[k]
    fixed = torch.zeros(len(atoms), dtype=torch.int)
    fixed[: len(atoms) // 3] = 1
    return {
        "cell": torch.from_numpy(atoms.cell.array.copy()).view(1, 3, 3).float(),
        "pos": torch.tensor(atoms.positions, dtype=torch.float32),
        "atomic_numbers": torch.tensor(atoms.numbers, dtype=torch.uint8),
        "natoms": len(atoms),
        "tags": torch.LongTensor(atoms.get_tags()),
        "fixed": fixed,
        "energy": np.float64(atoms.get_potential_energy()),  # ASE returns a numpy float
        "forces": torch.tensor(atoms.get_forces(), dtype=torch.float32),
        "sid": 1000 + k,
        "fid": 7 * k,
    }


@pytest.fixture
def frames(oc20_builders):
    return oc20_builders[0](4, 3)


def pyg_records(frames) -> list[bytes]:
    data_cls = pytest.importorskip("torch_geometric.data").Data
    return [
        pickle.dumps(data_cls(**s2ef_fields(frames, k)), protocol=-1) for k in range(len(frames))
    ]


class OldData:
    """A torch_geometric 1.x Data: fields in __dict__ (old key names y and force)."""


def old_pyg_record(fields: dict[str, object]) -> bytes:
    """Pickle as torch_geometric 1.x did; the class path is rewritten to PyG's own."""
    record = OldData()
    record.__dict__.update(fields)
    raw = pickle.dumps(record, protocol=2)
    ours = f"c{OldData.__module__}\nOldData\n".encode()
    assert ours in raw
    return raw.replace(ours, b"ctorch_geometric.data.data\nData\n")


def test_pyg2_records_yield_structures_labels_fixed_and_provenance(tmp_path, frames):
    path = tmp_path / "data.0000.lmdb"
    write_lmdb(path, pyg_records(frames))
    got = list(iter_oc20_lmdb(path))
    assert len(got) == 4
    for k, atoms in enumerate(got):
        want = frames[k]
        np.testing.assert_allclose(atoms.positions, want.positions, atol=1e-5)
        np.testing.assert_allclose(atoms.cell.array, want.cell.array, atol=1e-5)
        assert atoms.pbc.all()
        assert atoms.get_potential_energy() == pytest.approx(want.get_potential_energy())
        np.testing.assert_allclose(atoms.calc.results["forces"], want.get_forces(), atol=1e-5)
        np.testing.assert_array_equal(atoms.get_tags(), want.get_tags())
        (constraint,) = atoms.constraints
        assert isinstance(constraint, FixAtoms)
        assert constraint.index.tolist() == list(range(len(want) // 3))
        assert atoms.info["sid"] == 1000 + k and atoms.info["fid"] == 7 * k
        assert atoms.info["record"] == f"random{1000 + k},frame{7 * k}"
        assert atoms.info["lmdb_key"] == k


def test_old_pyg_records_with_old_key_names_and_no_length_key(tmp_path, frames):
    records = []
    for k in range(2):
        fields = s2ef_fields(frames, k)
        fields["y"] = float(fields.pop("energy"))
        fields["force"] = fields.pop("forces")
        records.append(old_pyg_record(fields))
    path = tmp_path / "old.lmdb"
    write_lmdb(path, records, length=False)
    assert count_frames([str(path)]) == 2
    got = list(iter_oc20_lmdb(path))
    assert got[1].get_potential_energy() == pytest.approx(frames[1].get_potential_energy())
    np.testing.assert_allclose(got[1].calc.results["forces"], frames[1].get_forces(), atol=1e-5)


def test_is2re_records_initial_or_relaxed(tmp_path, frames):
    fields = s2ef_fields(frames, 0)
    del fields["energy"], fields["forces"], fields["fid"]
    fields.update(pos_relaxed=fields["pos"] + 0.1, y_init=-1.0, y_relaxed=-2.5)
    path = tmp_path / "is2re.lmdb"
    write_lmdb(path, [old_pyg_record(fields)])
    (initial,) = iter_oc20_lmdb(path)
    assert initial.get_potential_energy() == pytest.approx(-1.0)
    assert initial.info["oc20_y_relaxed"] == pytest.approx(-2.5)
    assert initial.info["record"] == "random1000"
    (relaxed,) = iter_oc20_lmdb(path, relaxed=True)
    np.testing.assert_allclose(relaxed.positions, frames[0].positions + 0.1, atol=1e-5)
    assert relaxed.get_potential_energy() == pytest.approx(-2.5)


def test_folder_of_shards_through_the_registry(tmp_path, frames):
    folder = tmp_path / "s2ef_val"
    folder.mkdir()
    records = pyg_records(frames)
    write_lmdb(folder / "data.0000.lmdb", records[:3])
    write_lmdb(folder / "data.0001.lmdb", records[3:])
    (folder / "data_log.0000.txt").write_text("random1000,frame0\n")  # fairchem writes these too
    assert count_frames([str(folder)]) == 4
    chunks = list(iter_chunks([str(folder)], 3))
    files = [f for c in chunks for f in c.source_files]
    assert files == [f"oc20-lmdb:{folder / 'data.0000.lmdb'}"] * 3 + [
        f"oc20-lmdb:{folder / 'data.0001.lmdb'}"
    ]
    assert [a.info["sid"] for c in chunks for a in c.structures] == [1000, 1001, 1002, 1003]


def test_other_classes_are_refused_not_run(tmp_path):
    path = tmp_path / "evil.lmdb"
    write_lmdb(path, [pickle.dumps(os.system, protocol=2)])
    with pytest.raises(InputError, match=r"record 0 is not a fairchem Data pickle \(refusing"):
        list(iter_oc20_lmdb(path))


def test_missing_key_and_non_lmdb_file(tmp_path, frames):
    path = tmp_path / "short.lmdb"
    write_lmdb(path, pyg_records(frames)[:1])
    env = lmdb.open(str(path), subdir=False)
    with env.begin(write=True) as txn:
        txn.put(b"length", pickle.dumps(2))
    env.close()
    with pytest.raises(InputError, match="key 1 is missing"):
        list(iter_oc20_lmdb(path))
    (tmp_path / "junk.lmdb").write_bytes(b"not an lmdb" * 100)
    with pytest.raises(InputError, match="not a readable LMDB file"):
        list(iter_oc20_lmdb(tmp_path / "junk.lmdb"))
