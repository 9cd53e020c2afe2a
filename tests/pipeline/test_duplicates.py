"""Repeats inside the pool are excluded before scoring, listed in run.json, never picked."""

from __future__ import annotations

import ase.io

import fntk
from fntk.data import make_adsorbate_structures


def test_pool_repeats_and_a_file_given_twice_are_excluded(tmp_path):
    pool = make_adsorbate_structures(6, seed=21, adsorbates=("H", "O"), label=False)
    pool.append(pool[2].copy())  # an exact repeat, frame 6
    path = tmp_path / "pool.xyz"
    ase.io.write(path, pool)
    run = fntk.next_batch(path, n=6, features="embedding", selector="maxdist", device="cpu")
    assert [(d["source_index"], d["copy_of"]["source_index"]) for d in run.pool_duplicates] == [
        (6, 2)
    ]
    assert 6 not in run.result.indices.tolist()
    assert sorted(run.result.indices.tolist()) == [0, 1, 2, 3, 4, 5]
    assert run.run_record()["excluded_pool_duplicates"] == run.pool_duplicates

    twice = fntk.next_batch([path, path], n=3, features="embedding", device="cpu")
    assert len(twice.pool_duplicates) == 8  # frame 6, then all 7 frames of the second copy
    assert all(i < 7 for i in twice.result.indices.tolist())
