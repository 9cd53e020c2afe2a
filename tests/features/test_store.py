"""The feature store: atomic chunks, meta.json checks, resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fntk.errors import InputError
from fntk.features import FORCE_ROW, FeatureChunk, default_options
from fntk.features.store import FeatureStore


def chunk_of(start: int, n: int, width: int = 4) -> FeatureChunk:
    rng = np.random.default_rng(start)
    rows = 3 * n
    return FeatureChunk(
        values=rng.normal(size=(rows, width)),
        offsets=np.arange(0, rows + 1, 3, dtype=np.int64),
        source_index=np.arange(start, start + n, dtype=np.int64),
        n_atoms=np.ones(n, dtype=np.int64),
        row_kind=np.full(rows, FORCE_ROW),
    )


def test_write_read_and_resume(tmp_path):
    options = default_options("force-ntk", dim=4)
    store = FeatureStore.create(tmp_path / "f", options, "sevennet-0", chunk_size=2, n_features=4)
    first, second = chunk_of(0, 2), chunk_of(2, 1)
    store.write_chunk(0, first)
    store.write_chunk(1, second)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "f").iterdir())
    meta = json.loads((tmp_path / "f" / "meta.json").read_text())
    assert meta["options"]["name"] == "force-ntk" and meta["model"] == "sevennet-0"
    assert "fntk_version" in meta

    again = FeatureStore.create(tmp_path / "f", options, "sevennet-0", chunk_size=2, n_features=4)
    assert again.has_chunk(0) and again.has_chunk(1) and not again.has_chunk(2)
    back = FeatureStore.open(tmp_path / "f", options=options).read_all()
    np.testing.assert_array_equal(back.values, np.concatenate([first.values, second.values]))
    np.testing.assert_array_equal(back.source_index, [0, 1, 2])
    np.testing.assert_array_equal(back.row_kind, FORCE_ROW)


def test_mismatched_settings_are_refused(tmp_path):
    options = default_options("joint", dim=12)
    FeatureStore.create(tmp_path, options, "sevennet-0", chunk_size=8, n_features=12)
    with pytest.raises(InputError, match=r"option dim: stored 12, asked for 32"):
        FeatureStore.open(tmp_path, options=default_options("joint", dim=32))
    with pytest.raises(InputError, match="option name: stored 'joint', asked for 'force-ntk'"):
        FeatureStore.open(tmp_path, options=default_options("force-ntk"))
    with pytest.raises(InputError, match="model: stored 'sevennet-0'"):
        FeatureStore.create(tmp_path, options, "mace:/x.model", chunk_size=8, n_features=12)
    with pytest.raises(InputError, match="chunk_size: stored 8, asked for 4"):
        FeatureStore.create(tmp_path, options, "sevennet-0", chunk_size=4, n_features=12)


def test_open_without_meta_and_wrong_width(tmp_path):
    with pytest.raises(InputError, match="not a feature store"):
        FeatureStore.open(tmp_path)
    store = FeatureStore.create(
        tmp_path, default_options("joint"), "sevennet-0", chunk_size=8, n_features=3
    )
    with pytest.raises(ValueError, match="4 feature columns, the store 3"):
        store.write_chunk(0, chunk_of(0, 1))


def test_store_of_an_earlier_sketch_construction_is_refused(tmp_path):
    """Stores made before the ``sketch`` option (eigenbasis sketches) must not be resumed."""
    options = default_options("joint", dim=4)
    store = FeatureStore.create(tmp_path / "f", options, "sevennet-0", chunk_size=2, n_features=4)
    store.write_chunk(0, chunk_of(0, 2))
    meta_path = tmp_path / "f" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["options"]["sketch"] == "gaussian"
    del meta["options"]["sketch"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"earlier fntk \(its options lack sketch\)"):
        FeatureStore.open(tmp_path / "f", options=options)
    with pytest.raises(InputError, match="lack sketch"):
        FeatureStore.create(tmp_path / "f", options, "sevennet-0", chunk_size=2, n_features=4)


def test_checksum_rejects_corrupt_and_truncated_chunks(tmp_path):
    options = default_options("force-ntk", dim=4)
    store = FeatureStore.create(
        tmp_path, options, "m", chunk_size=2, n_features=4, weights_hash="ab" * 16
    )
    source = "f" * 64
    store.write_chunk(0, chunk_of(0, 2), source=source)
    store.write_chunk(1, chunk_of(2, 2), source=source)
    assert store.has_chunk(0, source) and store.has_chunk(1, source)
    path0, path1 = store.chunk_path(0, source), store.chunk_path(1, source)
    data = bytearray(path0.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit inside the arrays
    path0.write_bytes(bytes(data))
    path1.write_bytes(path1.read_bytes()[:100])
    assert not store.has_chunk(0, source) and not store.has_chunk(1, source)
    with pytest.raises(InputError, match="fails its checksum"):
        store.read_chunk(0, source)
    store.finish_source(source, "pool.xyz", 4)
    assert store.source_record(source) == {
        "path": "pool.xyz",
        "sha256": source,
        "n_frames": 4,
        "n_chunks": 2,
    }
    with pytest.raises(InputError, match=r"weights_hash: stored 'abab"):
        FeatureStore.create(tmp_path, options, "m", chunk_size=2, n_features=4, weights_hash="c")


def test_store_on_an_existing_file_or_bad_meta_is_one_clear_error(tmp_path):
    options = default_options("force-ntk", dim=4)
    a_file = tmp_path / "feats"
    a_file.write_text("not a folder")
    with pytest.raises(InputError, match="exists and is not a directory"):
        FeatureStore.create(a_file, options, "m", chunk_size=2, n_features=4)
    assert a_file.read_text() == "not a folder"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")  # no store's: never "delete the folder"
    with pytest.raises(InputError, match=r"is not a feature store: its meta\.json was not"):
        FeatureStore.open(broken)
    meta = {"store_format": 2, "model": "m", "options": {"name": "nosuch"}}
    (broken / "meta.json").write_text(json.dumps({**meta, "chunk_size": 2, "n_features": 4}))
    with pytest.raises(InputError, match=r"meta\.json of the feature store is unreadable"):
        FeatureStore.open(broken)
