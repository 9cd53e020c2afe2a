"""``fntk select``'s stopping signal: the pool's mean predicted force RMSE before and after the
batch, from a uniform pool sample, the same for any chunk size."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from fntk.pipeline import build_run_options, run_selection
from fntk.pipeline.uncertainty import ERROR_SAMPLE

NAMES = ("CH4", "CH3OH", "C2H6", "NH3", "H2O", "HCOOH")


def _frames(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = molecule(NAMES[i % len(NAMES)])
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("stop")
    ase.io.write(root / "pool.xyz", _frames(8, 0))
    ase.io.write(root / "train.xyz", _frames(2, 1))
    return [str(root / "pool.xyz")], [str(root / "train.xyz")]


def test_stopping_signal_drops_after_the_batch_and_ignores_chunking(files, sevennet64):
    pool, train = files
    signals = []
    for chunk_size in (3, 8):
        options = build_run_options(
            n=3, device="cpu", dim=4, chunk_size=chunk_size, dtype="float64"
        )
        run = run_selection(pool, train, options, backend=sevennet64)
        signals.append(run.run_record()["stopping_signal"])
    first, second = signals
    assert first["n_sample"] == 8 <= ERROR_SAMPLE
    assert first["pool_force_rmse_after"] < first["pool_force_rmse_before"]
    assert np.all(
        np.array(first["after_per_structure"]) <= np.array(first["before_per_structure"]) + 1e-12
    )
    assert first["pool_force_rmse_before"] == pytest.approx(second["pool_force_rmse_before"])
    assert first["pool_force_rmse_after"] == pytest.approx(second["pool_force_rmse_after"])
