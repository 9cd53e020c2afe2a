"""``fntk select`` on a Dask cluster: same picks as one process, a killed worker, kill -9, resume.

One LocalCluster of 2 worker processes serves the whole module (starting one costs seconds);
the real SevenNet-0 featurises small molecules (H, C, N, O), with a narrow joint sketch (d=4)
to keep the module fast. Only the kill -9 test starts a cluster of its own (``--workers 2``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import ase.io
import numpy as np
import pytest
from ase.build import molecule
from typer.testing import CliRunner

from fntk.cli.main import app
from fntk.features.store import FeatureStore, file_sha256
from fntk.pipeline import build_run_options, run_selection

distributed = pytest.importorskip("distributed")

NAMES = ("CH4", "CH3OH", "C2H6", "NH3", "H2O", "CH3CH2OH", "HCOOH", "CH3CHO")


def rattled(name: str, seed: int, stdev: float = 0.08):
    atoms = molecule(name)
    atoms.rattle(stdev, seed=seed)
    return atoms


def pool_frames(n: int) -> list:
    return [rattled(NAMES[i % len(NAMES)], seed=i) for i in range(n)]


@pytest.fixture(scope="module")
def cluster():
    import dask

    from fntk.parallel import WORKER_CONFIG

    with (
        dask.config.set(WORKER_CONFIG),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local.scheduler_address, client


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    frames = pool_frames(11)
    frames.append(frames[4].copy())  # a pool repeat: excluded on the client, not scored
    ase.io.write(root / "pool.xyz", frames)
    ase.io.write(root / "train.xyz", [rattled(NAMES[i], seed=100 + i, stdev=0.05) for i in (0, 3)])
    return root


def options(**flags):
    return build_run_options(**{"n": 3, "device": "cpu", "dim": 4, "chunk_size": 3, **flags})


@pytest.fixture(scope="module")
def backend():
    """The client's SevenNet-0, loaded once (workers load their own)."""
    from fntk.features.registry import load_backend_for

    return load_backend_for(options().model, options().features)


@pytest.fixture
def select(files, backend):
    def run(opts, **execution):
        pool, train = [str(files / "pool.xyz")], [str(files / "train.xyz")]
        return run_selection(pool, train, opts.executed_with(**execution), backend=backend)

    return run


@pytest.fixture(scope="module")
def single(files, backend):
    """The single-process run: the reference for every distributed run, with one torch thread
    like the workers (another test of the suite may leave more)."""
    import torch

    pool, train = [str(files / "pool.xyz")], [str(files / "train.xyz")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_selection(pool, train, options(), backend=backend)
    finally:
        torch.set_num_threads(threads)


def assert_same_selection(run, reference, rtol=1e-6):
    """Same picks, shortlist and duplicates; scores and plot features equal to ``rtol`` (float32
    features of one chunk agree across processes; another chunking batches other structures
    together, which moves them in their last bits, but not the picks)."""
    np.testing.assert_array_equal(run.result.indices, reference.result.indices)
    np.testing.assert_allclose(run.result.scores, reference.result.scores, rtol=rtol)
    np.testing.assert_array_equal(
        run.result.shortlist.source_index, reference.result.shortlist.source_index
    )
    assert [a.info["fntk_source_index"] for a in run.picked] == [
        a.info["fntk_source_index"] for a in reference.picked
    ]
    assert run.pool_duplicates == reference.pool_duplicates
    np.testing.assert_allclose(
        run.plot_data.pool_summaries, reference.plot_data.pool_summaries, rtol=rtol
    )
    assert [row["pool_index"] for row in run.shortlist] == [
        row["pool_index"] for row in reference.shortlist
    ]


def test_two_workers_pick_what_one_process_picks(select, files, cluster, single, tmp_path):
    address, client = cluster
    assert len(single.pool_duplicates) == 1
    for chunk_size, store in ((3, tmp_path / "s3"), (5, None)):
        run = select(options(chunk_size=chunk_size), scheduler=address, store=store)
        assert_same_selection(run, single, rtol=1e-6 if chunk_size == 3 else 1e-5)
    assert run.store is None
    first = FeatureStore.open(tmp_path / "s3")
    assert first.source_record(file_sha256(files / "pool.xyz"))["n_chunks"] == 4
    threads = client.run(lambda: __import__("torch").get_num_threads())
    assert set(threads.values()) == {1}
    environ = client.run(
        lambda: {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")}
    )
    assert set(map(tuple, (e.values() for e in environ.values()))) == {("1", None)}
    # A second round from the filled store computes nothing and still picks the same.
    again = select(options(chunk_size=3), scheduler=address, store=tmp_path / "s3")
    assert again.store == {**again.store, "computed_chunks": 0, "reused_chunks": 4 + 1}
    assert_same_selection(again, single)


def test_a_worker_killed_mid_run_changes_nothing(select, files, cluster, single, tmp_path):
    address, client = cluster
    store = tmp_path / "s"
    outcome: dict = {}

    def run() -> None:
        outcome["run"] = select(options(), scheduler=address, store=store)

    thread = threading.Thread(target=run)
    thread.start()
    pool_chunks = store / "sources" / file_sha256(files / "pool.xyz")[:32]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(pool_chunks.glob("chunk-*.npz")):
        time.sleep(0.01)
    victim = sorted(client.run(os.getpid).values())[0]
    os.kill(victim, signal.SIGKILL)
    landed = len(list(pool_chunks.glob("chunk-*.npz")))
    assert thread.is_alive() and landed < 4, "the run ended before a worker could be killed"
    thread.join(timeout=600)
    assert_same_selection(outcome["run"], single)
    client.wait_for_workers(2, timeout=120)
    assert victim not in client.run(os.getpid).values()


def cli_args(files) -> list[str]:
    """``fntk select`` flags of :func:`options` on :func:`files`."""
    args = [str(files / "pool.xyz"), "-t", str(files / "train.xyz"), "-n", "3"]
    return [*args, "--device", "cpu", "--dim", "4", "--chunk-size", "3", "-q"]


def picked_indices(out) -> list[int]:
    return [a.info["fntk_source_index"] for a in ase.io.read(out / "selected.xyz", ":")]


def test_cli_with_a_scheduler_writes_the_same_run(files, cluster, single, cli_single, tmp_path):
    address, _ = cluster
    out = tmp_path / "two"
    fresh_cli(["select", *cli_args(files), "-o", str(out), "--scheduler", address])
    record = json.loads((out / "run.json").read_text())
    expected = json.loads(single.options.model_dump_json())
    assert record["options"]["execution"]["scheduler"] == address
    record["options"].pop("execution"), expected.pop("execution")  # how it ran, not what
    assert record["options"] == expected
    assert picked_indices(out) == [a.info["fntk_source_index"] for a in single.picked]
    assert "start_cluster" in record["timings_s"]
    assert_same_bytes(out, cli_single)


def test_unreachable_scheduler_is_one_clear_error():
    from fntk.engine import ModelSource
    from fntk.errors import InputError
    from fntk.parallel import DaskEngine

    source = ModelSource("sevennet-0", options().features, "0" * 32)
    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler tcp://127.0.0.1:9"):
        DaskEngine(source, scheduler="tcp://127.0.0.1:9", timeout_s=1)


def test_kill_9_of_a_two_worker_run_then_resume(files, cluster, single, tmp_path):
    """`fntk select --workers 2` and its worker processes killed with SIGKILL; `--resume`
    recomputes only the missing chunks and picks what one process picks."""
    address, _ = cluster
    args = [sys.executable, "-m", "fntk.cli.main", "select", *cli_args(files)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [*args, "-o", str(out), "--resume", "--workers", "2"], env=env, start_new_session=True
    )
    chunks = out / "feature-store" / "sources"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(chunks.glob("*/chunk-*.npz"))) >= 2:  # the train chunk and a pool chunk
            break
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)  # the client, its cluster and its workers
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    time.sleep(0.5)
    done = len(list(chunks.glob("*/chunk-*.npz")))
    assert 2 <= done < 5 and not (out / "selected.xyz").exists()

    subprocess.run([*args, "-o", str(out), "--resume", "--scheduler", address], env=env, check=True)
    record = json.loads((out / "run.json").read_text())
    assert record["store"]["reused_chunks"] == done
    assert record["store"]["computed_chunks"] == 5 - done
    assert picked_indices(out) == [a.info["fntk_source_index"] for a in single.picked]


@pytest.mark.parametrize("method", ["coverage", "lcmd"])
def test_a_shortlist_smaller_than_the_pool_is_the_same_on_workers(
    select, cluster, tmp_path, method
):
    """M = 4 of 11: coverage's uniform sample and lcmd's top-M by variance are the same sets
    on the workers as in one process (the store makes both runs read the same features)."""
    address, _ = cluster
    opts = options(shortlist=4, selector=method)
    reference = select(opts, store=tmp_path / "store")
    assert len(reference.result.shortlist.source_index) == 4
    run = select(opts, scheduler=address, store=tmp_path / "store")
    assert_same_selection(run, reference)


@pytest.mark.parametrize(
    "engine", ["--scheduler", pytest.param("--workers 2", marks=pytest.mark.slow)]
)
def test_sample_only_features_on_workers_pick_what_the_whole_pool_picks(
    select, cluster, tmp_path, engine
):
    """coverage with M = 4 of 11 and no store featurises only its uniform sample, on the
    workers as in one process, and picks what the whole-pool pass (with a store) picks."""
    opts = options(shortlist=4)
    whole = select(opts, store=tmp_path / "store")
    assert whole.pool_passes["pool_structures_featurised"] == 12
    alone = select(opts)
    parallel = (
        select(opts, scheduler=cluster[0]) if engine == "--scheduler" else select(opts, workers=2)
    )
    # float32 features of the sample batched without the rest of the pool move in their last
    # bits (scores ~1e-6 relative), never enough to change a pick
    for run in (alone, parallel):
        assert run.pool_passes["pool_structures_featurised"] == 4
        np.testing.assert_array_equal(run.result.indices, whole.result.indices)
        np.testing.assert_allclose(run.result.scores, whole.result.scores, rtol=1e-5)
        assert any("featurised only the uniform sample of 4 of 11" in n for n in run.feature_status)
    np.testing.assert_allclose(
        parallel.stopping_signal["pool_force_rmse_after"],
        whole.stopping_signal["pool_force_rmse_after"],
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "engine",
    ["one process", "--scheduler", pytest.param("--workers 2", marks=pytest.mark.slow)],
)
def test_the_cli_reads_each_input_file_twice(files, single, cluster, tmp_path, monkeypatch, engine):
    """The scan (validation, counts, fingerprints, lambda's atom count, profile, offsets) and
    the feature pass; the picks are then read alone at their byte offsets. The client reads
    the same with a running scheduler (the module's cluster) as with ``--workers 2`` (a new
    local cluster: slow)."""
    import fntk.io.read as read

    passes: list[str] = []
    fetched: list[tuple[str, int]] = []
    real_iread, real_fetch = read._iread, read.read_frame_at

    def counting_iread(spec, *args, **kwargs):
        passes.append(os.path.basename(spec))
        return real_iread(spec, *args, **kwargs)

    def counting_fetch(path, offset):
        fetched.append((os.path.basename(path), offset))
        return real_fetch(path, offset)

    monkeypatch.setattr(read, "_iread", counting_iread)
    monkeypatch.setattr("fntk.pipeline.job.read_frame_at", counting_fetch)
    out = tmp_path / "run"
    extra = {"one process": [], "--scheduler": ["--scheduler", cluster[0]]}.get(
        engine, ["--workers", "2"]
    )
    result = CliRunner().invoke(app, ["select", *cli_args(files), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    assert sorted(passes) == ["pool.xyz", "pool.xyz", "train.xyz", "train.xyz"]
    record = json.loads((out / "run.json").read_text())
    # the 3 picks, read alone at their offsets; the stopping signal's pool sample is not
    # read (nor featurised) again: its blocks come from the pool pass
    assert record["stopping_signal"]["n_sample"] == 11
    assert [name for name, _ in fetched] == ["pool.xyz"] * 3
    assert record["pool_passes"] == {
        "full_reads": 2,
        "picks_read_by_offset": 3,
        "files_reread_for_picks": 0,
        "pool_structures_featurised": 11,  # the new ones (M = 1000 > 11), not the repeat
    }
    assert picked_indices(out) == [a.info["fntk_source_index"] for a in single.picked]
    assert record["excluded_pool_duplicates"] == single.pool_duplicates


def fresh_cli(args: list[str]) -> None:
    """``fntk ARGS`` in a new process with one torch thread, as a user runs it (and as the
    Dask workers compute): its bytes depend on nothing this test process did before. In
    process, the suite of 2026-12-06 once wrote other last bits than a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FNTK_CACHE_DIR": ""}
    done = subprocess.run(
        [sys.executable, "-m", "fntk.cli.main", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def cli_single(files, tmp_path_factory):
    """``fntk select`` in one fresh process (one torch thread, like the workers): its folder."""
    out = tmp_path_factory.mktemp("cli") / "one"
    fresh_cli(["select", *cli_args(files), "-o", str(out)])
    return out


def assert_same_bytes(out, reference) -> None:
    """selected.xyz and scores.csv of the run in ``out`` are those of ``reference``, byte for
    byte (the issue's check of a distributed run against one process)."""
    for name in ("selected.xyz", "scores.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.slow
def test_cli_with_workers_2_writes_the_bytes_of_one_process(files, cli_single, tmp_path):
    """``fntk select --workers 2``: a local cluster of its own (slow to start)."""
    out = tmp_path / "two"
    fresh_cli(["select", *cli_args(files), "-o", str(out), "--workers", "2"])
    assert_same_bytes(out, cli_single)
