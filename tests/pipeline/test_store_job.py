"""``run_selection`` through a feature store: reuse, resume, grown training set, refusals."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from fntk.errors import InputError
from fntk.features.store import FeatureStore, file_sha256
from fntk.pipeline import build_run_options, run_selection


def rattled(atoms, seed: int, stdev: float = 0.05):
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


NAMES = ("CH4", "CH3OH", "C2H6", "NH3", "H2O", "CH3CH2OH", "HCOOH", "CH3CHO")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    pool = [rattled(molecule(NAMES[i % len(NAMES)]), seed=i, stdev=0.08) for i in range(11)]
    train = [rattled(molecule(NAMES[i % len(NAMES)]), seed=100 + i) for i in range(3)]
    more = [rattled(molecule(NAMES[i % len(NAMES)]), seed=200 + i) for i in range(2)]
    for name, frames in (("pool", pool), ("train", train), ("more", more)):
        ase.io.write(root / f"{name}.xyz", frames)
    return root


@pytest.fixture(scope="module")
def backend(mace_model_file):
    from fntk.features.registry import load_backend_for

    opts = options(mace_model_file)
    return load_backend_for(opts.model, opts.features)


def options(mace_model_file, **flags):
    base = dict(n=3, model=f"mace:{mace_model_file}", features="joint", dim=4, device="cpu")
    return build_run_options(**{**base, "chunk_size": 3, **flags})


def select(files, opts, backend, store=None, train=("train.xyz",)):
    return run_selection(
        [str(files / "pool.xyz")],
        [str(files / t) for t in train],
        opts.executed_with(store=store),
        backend=backend,
    )


def test_store_reuse_resume_and_grown_train(files, tmp_path, backend, mace_model_file):
    opts = options(mace_model_file)
    plain = select(files, opts, backend)
    first = select(files, opts, backend, store=tmp_path / "s")
    assert first.store["computed_chunks"] == 4 + 1 and first.store["reused_chunks"] == 0
    np.testing.assert_array_equal(first.result.indices, plain.result.indices)

    again = select(files, opts, backend, store=tmp_path / "s")
    assert again.store["computed_chunks"] == 0 and again.store["reused_chunks"] == 5
    np.testing.assert_array_equal(again.result.indices, plain.result.indices)

    # A run killed after some chunks: remove two pool chunks, corrupt a third.
    store = FeatureStore.open(tmp_path / "s")
    pool_hash = file_sha256(files / "pool.xyz")
    store.chunk_path(1, pool_hash).unlink()
    store.chunk_path(3, pool_hash).unlink()
    corrupt = store.chunk_path(2, pool_hash)
    data = bytearray(corrupt.read_bytes())
    data[200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    resumed = select(files, opts, backend, store=tmp_path / "s")
    assert resumed.store["computed_chunks"] == 3 and resumed.store["reused_chunks"] == 2
    np.testing.assert_array_equal(resumed.result.indices, plain.result.indices)
    np.testing.assert_allclose(resumed.result.scores, plain.result.scores, rtol=1e-9)

    grown = select(files, opts, backend, store=tmp_path / "s", train=("train.xyz", "more.xyz"))
    assert grown.store["computed_chunks"] == 1 and grown.store["reused_chunks"] == 5
    assert grown.n_train == 5


def test_store_of_other_options_or_model_is_refused(files, tmp_path, backend, mace_model_file):
    select(files, options(mace_model_file), backend, store=tmp_path / "s")
    with pytest.raises(InputError, match=r"option dim: stored 4, asked for 5"):
        select(files, options(mace_model_file, dim=5), backend, store=tmp_path / "s")
    with pytest.raises(InputError, match=r"chunk_size: stored 3, asked for 2"):
        select(files, options(mace_model_file, chunk_size=2), backend, store=tmp_path / "s")
    with _perturbed(backend):
        with pytest.raises(InputError, match=r"weights_hash: stored '[0-9a-f]{8}"):
            select(files, options(mace_model_file), backend, store=tmp_path / "s")


def test_changed_input_file_never_reuses_old_chunks(files, tmp_path, backend, mace_model_file):
    opts = options(mace_model_file)
    select(files, opts, backend, store=tmp_path / "s", train=())
    changed = tmp_path / "in"
    changed.mkdir()
    frames = ase.io.read(files / "pool.xyz", ":")
    frames[0].positions[0, 0] += 0.3
    ase.io.write(changed / "pool.xyz", frames)
    run = select(changed, opts, backend, store=tmp_path / "s", train=())
    assert run.store["computed_chunks"] == 4 and run.store["reused_chunks"] == 0


class _perturbed:
    """Context: one parameter of ``backend`` changed by a tiny amount, restored on exit."""

    def __init__(self, backend) -> None:
        self.parameter = next(backend.parameters())

    def __enter__(self) -> None:
        import torch

        with torch.no_grad():
            self.parameter.view(-1)[0] += 1e-3

    def __exit__(self, *exc: object) -> None:
        import torch

        with torch.no_grad():
            self.parameter.view(-1)[0] -= 1e-3


def test_kill_9_then_resume_recomputes_only_missing_chunks(tmp_path, mace_model_file):
    """`fntk select` killed with SIGKILL mid-run; `--resume` finishes with the same picks."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    frames = [rattled(molecule(NAMES[i % len(NAMES)]), seed=i, stdev=0.08) for i in range(60)]
    ase.io.write(tmp_path / "pool.xyz", frames)
    args = [sys.executable, "-m", "fntk.cli.main", "select", str(tmp_path / "pool.xyz")]
    args += ["-n", "4", "--model", f"mace:{mace_model_file}", "--features", "joint"]
    args += ["--dim", "6", "--device", "cpu", "--chunk-size", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "killed"
    process = subprocess.Popen([*args, "-o", str(out), "--resume"], env=env)
    chunks_dir = out / "feature-store" / "sources"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(chunks_dir.glob("*/chunk-*.npz"))) >= 3:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = len(list(chunks_dir.glob("*/chunk-*.npz")))
    assert 3 <= done < 30 and not (out / "selected.xyz").exists()

    subprocess.run([*args, "-o", str(out), "--resume"], env=env, check=True)
    subprocess.run([*args, "-o", str(tmp_path / "whole")], env=env, check=True)
    resumed = json.loads((out / "run.json").read_text())
    assert resumed["store"]["reused_chunks"] == done
    assert resumed["store"]["computed_chunks"] == 30 - done
    picked = [a.info["fntk_source_index"] for a in ase.io.read(out / "selected.xyz", ":")]
    whole = ase.io.read(tmp_path / "whole" / "selected.xyz", ":")
    assert picked == [a.info["fntk_source_index"] for a in whole]
