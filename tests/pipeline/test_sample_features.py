"""Featurise only what the selector uses, and the stopping signal from the pool pass's blocks.

``coverage`` and ``random`` without a store featurise only their seeded uniform sample of ``M``
pool structures and pick what the whole-pool pass picks (checked against the library on the
whole pool's features, and against a run with a store, which featurises every structure). No
pool structure is featurised twice: the stopping signal's sample and the picks' blocks come
from the pass. A small MACE model (H, C, N, O, Cu) keeps it fast.
"""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from fntk.features.registry import compute_features
from fntk.pipeline import build_run_options, run_selection
from fntk.pipeline.uncertainty import ERROR_SAMPLE
from fntk.select import Selector
from fntk.select.errorbars import ErrorModel

NAMES = ("CH4", "NH3", "H2O", "CH3OH", "C2H6", "HCOOH")


def frames(n: int, seed: int) -> list:
    out = []
    for i in range(n):
        atoms = molecule(NAMES[i % len(NAMES)])
        atoms.rattle(0.06, seed=seed + i)
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    train = frames(3, 100)
    pool = frames(22, 0)
    pool[5] = train[1].copy()  # a training structure: never a candidate
    pool.append(pool[7].copy())  # a repeat
    pool.append(molecule("SH2"))  # S: unknown to the model (only with skip_unsupported)
    ase.io.write(root / "pool.xyz", pool)
    ase.io.write(root / "train.xyz", train)
    return [str(root / "pool.xyz")], [str(root / "train.xyz")]


@pytest.fixture
def options(mace_model_file):
    def build(**flags):
        defaults = {
            "n": 3,
            "model": f"mace:{mace_model_file}",
            "dtype": "float64",
            "device": "cpu",
            "dim": 4,
            "chunk_size": 5,
            "skip_unsupported": True,
        }
        return build_run_options(**{**defaults, **flags})

    return build


@pytest.fixture
def counted(monkeypatch, mace64):
    """Run a selection and count the structures the model featurised."""
    import fntk.pipeline.featurize as featurize
    import fntk.pipeline.stages as stages

    seen: list[int] = []
    real = stages.compute_features

    def counting(backend, structures, *args, **kwargs):
        seen.append(len(structures))
        return real(backend, structures, *args, **kwargs)

    monkeypatch.setattr(stages, "compute_features", counting)
    monkeypatch.setattr(featurize, "compute_features", counting)

    def run(files, opts, **kwargs):
        seen.clear()
        result = run_selection(*files, opts, backend=mace64, **kwargs)
        return result, sum(seen)

    return run


def whole_pool_reference(files, run_opts, backend):
    """Picks of the library on the features of every new, supported pool structure, with the
    options the run used (``run_opts``: lambda set from the pool)."""
    pool_files, train_files = files
    train = ase.io.read(train_files[0], ":")
    pool = ase.io.read(pool_files[0], ":")
    train_prints = {a.positions.tobytes() for a in train}
    seen, keep = set(), []
    for i, atoms in enumerate(pool):
        key = atoms.positions.tobytes()
        if key not in train_prints and key not in seen and 16 not in atoms.numbers:
            keep.append(i)
        seen.add(key)
    features = run_opts.features
    train_chunk = compute_features(backend, train, features)
    pool_chunk = compute_features(backend, [pool[i] for i in keep], features, np.array(keep))
    selector = Selector.from_options(run_opts.select).fit([train_chunk])
    return selector.select(pool_chunk.split(4), run_opts.n, random_state=run_opts.seed)


@pytest.mark.parametrize("method", ["coverage", "random"])
def test_sample_only_picks_what_the_whole_pool_picks(
    files, counted, mace64, tmp_path, method, options
):
    opts = options(shortlist=6, selector=method)
    sampled, n_model = counted(files, opts)
    assert n_model == 3 + 6  # the training set and the uniform sample: nothing else
    assert sampled.pool_passes["pool_structures_featurised"] == 6
    note = "featurised only the uniform sample of 6 of 21 new pool structures"
    assert any(note in line for line in sampled.run_record()["notes"])
    whole, n_whole = counted(files, opts.executed_with(store=tmp_path / f"store-{method}"))
    assert whole.pool_passes["pool_structures_featurised"] == 23  # not SH2 (skipped)
    assert n_whole == 3 + 23
    assert not any(note in line for line in whole.run_record()["notes"])
    reference = whole_pool_reference(files, sampled.options, mace64)
    for run in (sampled, whole):
        np.testing.assert_array_equal(run.result.indices, reference.indices)
        np.testing.assert_allclose(run.result.scores, reference.scores, rtol=1e-9)
        np.testing.assert_array_equal(
            run.result.shortlist.source_index, reference.shortlist.source_index
        )
    for key in ("pool_force_rmse_before", "pool_force_rmse_after", "n_sample"):
        assert sampled.stopping_signal[key] == pytest.approx(whole.stopping_signal[key], rel=1e-9)
    assert [s["source_index"] for s in sampled.skipped_unsupported] == [23]


def test_a_pool_within_m_is_featurised_whole(files, counted, options):
    run, n_model = counted(files, options())  # M = 1000
    assert n_model == 3 + 21  # every new, supported structure (not the copy or the repeat)
    assert run.pool_passes["pool_structures_featurised"] == 21
    assert run.stopping_signal["n_sample"] == 21


def test_the_stopping_signal_reuses_the_pass_features(files, counted, mace64, options):
    """lcmd featurises the whole pool and keeps the blocks of every ceil(n_pool / 32)-th new
    pool structure; the signal equals the estimator on freshly computed features of the same
    structures, and no structure is featurised after the pass."""
    opts = options(selector="lcmd")
    run, n_model = counted(files, opts)
    assert n_model == 3 + 23
    signal = run.stopping_signal
    stride = -(-24 // ERROR_SAMPLE)
    assert stride == 1 and signal["n_sample"] == 21
    assert "every 1-th new pool structure" in signal["sample"]
    pool = ase.io.read(files[0][0], ":")
    new = [i for i in range(24) if i not in (5, 22, 23)]
    fresh = compute_features(mace64, [pool[i] for i in new], run.options.features)
    train = compute_features(mace64, ase.io.read(files[1][0], ":"), run.options.features)
    picked = compute_features(
        mace64, [pool[int(i)] for i in run.result.indices], run.options.features
    )
    model = ErrorModel(force_row_scale=run.options.features.force_weight).fit(train)
    before = model.estimate(fresh).force_sigma
    after = model.add(picked).estimate(fresh).force_sigma
    assert signal["pool_force_rmse_before"] == pytest.approx(np.mean(before), rel=1e-9)
    assert signal["pool_force_rmse_after"] == pytest.approx(np.mean(after), rel=1e-9)


def test_coverage_takes_the_signal_sample_from_its_uniform_sample(files, counted, options):
    run, _ = counted(files, options(shortlist=6))
    assert run.stopping_signal["n_sample"] == 6
    assert "uniform pool sample" in run.stopping_signal["sample"]
    assert (
        run.stopping_signal["pool_force_rmse_after"] < run.stopping_signal["pool_force_rmse_before"]
    )
    assert len(run.plot_data.picked_summaries) == 3  # from the picks' blocks in the shortlist
