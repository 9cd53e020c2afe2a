"""Stages of the pool pass: the merge of scored chunks equals the streamed shortlist in any
order, memory is flat, a toy engine (a thread pool) picks what one process picks, and a bad
pool stops before any featurisation."""

from __future__ import annotations

import tracemalloc

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.errors import InputError
from fntk.pipeline import build_run_options, run_selection
from fntk.select import (
    SelectOptions,
    Selector,
    ShortlistMerge,
    build_shortlist,
    factorize_precision,
)


def synthetic_chunk(start: int, n: int, dim: int, rng: np.random.Generator) -> FeatureChunk:
    """Joint-shaped blocks (1 energy + 3N force rows, N in 3..12), float32."""
    atoms = rng.integers(3, 13, size=n)
    offsets = np.concatenate([[0], np.cumsum(1 + 3 * atoms)]).astype(np.int64)
    kinds = np.full(offsets[-1], FORCE_ROW)
    kinds[offsets[:-1]] = ENERGY_ROW
    return FeatureChunk(
        values=rng.normal(size=(offsets[-1], dim)).astype(np.float32),
        offsets=offsets,
        source_index=np.arange(start, start + n, dtype=np.int64),
        n_atoms=atoms.astype(np.int64),
        row_kind=kinds,
    )


def precision(dim: int):
    rng = np.random.default_rng(1)
    train = synthetic_chunk(10**6, 20, dim, rng)
    rows = train.values.astype(np.float64)
    return factorize_precision(
        rows.T @ rows, 20, train.n_rows, sigma=None, relative_noise=1e-3, jitter_tries=4
    )


def merged_stream(chunks, scorer, size):
    """What the pool pass does with scored chunks: each is cut at the bar known when it was
    handed out (here: after the chunks merged so far), then merged."""
    merge = ShortlistMerge(size)
    for chunk in chunks:
        merge.offer(scorer(chunk).beating(merge.bar()))
    return merge


def fitted(options, prec):
    """A selector fitted to ``prec`` (the training blocks are not kept: no train centres)."""
    selector = Selector(options)
    selector.precision_, selector.train_ = prec, None
    return selector


def scorer_of(options, prec, seed=None):
    selector = fitted(options, prec)
    return selector.scorer(prec.n_features, selector.shortlist_key(seed))


@pytest.mark.parametrize("method", ["lcmd", "random", "coverage"])
def test_merge_keeps_the_streamed_shortlist_in_any_order(method):
    dim, size = 6, 40
    rng = np.random.default_rng(0)
    chunks = [synthetic_chunk(50 * k, 50, dim, rng) for k in range(12)]
    prec = precision(dim)
    options = SelectOptions(method=method, shortlist_size=size)
    scorer = scorer_of(options, prec, seed=3)
    key = scorer.random_key
    assert (key is None) == (method == "lcmd")
    streamed = build_shortlist(
        chunks,
        prec,
        size=size,
        normalization=options.normalization,
        energy_weight=options.energy_weight,
        force_weight=options.force_weight,
        cost_exponent=options.cost_exponent,
        random_key=key,
    )
    for order in (range(12), rng.permutation(12), range(11, -1, -1)):
        merge = merged_stream([chunks[k] for k in order], scorer, size)
        merged = merge.shortlist(dim)
        np.testing.assert_array_equal(merged.source_index, streamed.source_index)
        np.testing.assert_array_equal(merged.chunk.values, streamed.chunk.values)
        np.testing.assert_array_equal(merged.posterior_variance, streamed.posterior_variance)
        assert (merged.n_pool, merged.max_rows) == (streamed.n_pool, streamed.max_rows)
        # the bar filters: far fewer blocks than the pool travel back
        assert merge.stored <= 3 * size
    picked = fitted(options, prec).select_shortlist(merged, prec, n=5, random_state=3)
    direct = fitted(options, prec).select(chunks, n=5, random_state=3)
    np.testing.assert_array_equal(picked.indices, direct.indices)
    np.testing.assert_array_equal(picked.scores, direct.scores)


def scoring_peak_bytes(n_pool: int, chunk_size: int = 250, dim: int = 8) -> int:
    """tracemalloc peak of scoring + merging ``n_pool`` synthetic structures (chunks made one
    at a time, as a store or a worker hands them over)."""
    scorer = scorer_of(SelectOptions(shortlist_size=200), precision(dim))
    rng = np.random.default_rng(0)
    tracemalloc.start()
    merge = merged_stream(
        (synthetic_chunk(k, chunk_size, dim, rng) for k in range(0, n_pool, chunk_size)),
        scorer,
        200,
    )
    candidates = merge.shortlist(dim).chunk
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert candidates.n_structures == 200
    return peak


def test_client_memory_of_scoring_does_not_grow_with_the_pool():
    small, large = scoring_peak_bytes(2_000), scoring_peak_bytes(20_000)
    # Features of the large pool are ~25 MB; holding them (or their scores' blocks) would
    # make the ratio ~10. The merge keeps O(M) blocks and O(M) keys.
    assert large < 1.5 * small, (small, large)


def test_bad_frame_late_in_the_pool_fails_before_any_featurisation(
    tmp_path, monkeypatch, mace_model_file
):
    import fntk.pipeline.featurize as featurize
    import fntk.pipeline.job as job
    import fntk.pipeline.stages as stages

    frames = []
    for i in range(30):
        atoms = molecule(("CH4", "NH3", "H2O")[i % 3])
        atoms.rattle(0.05, seed=i)
        frames.append(atoms)
    frames[27].positions[1] = frames[27].positions[0] + 0.1  # two atoms 0.1 A apart
    ase.io.write(tmp_path / "pool.xyz", frames)
    calls = []
    real = featurize.compute_features

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(featurize, "compute_features", counting)
    monkeypatch.setattr(stages, "compute_features", counting)
    monkeypatch.setattr(job, "REFERENCE_SAMPLE", 5)  # lambda reads 5 frames, not the bad one
    options = build_run_options(
        n=2, model=f"mace:{mace_model_file}", features="joint", dim=4, chunk_size=4, device="cpu"
    )
    with pytest.raises(InputError, match=r"pool.xyz, frame 27: atoms 0 and 1 overlap"):
        run_selection([str(tmp_path / "pool.xyz")], [], options)
    assert calls == []
    frames[27].positions[1] += 1.0
    ase.io.write(tmp_path / "pool.xyz", frames)
    run_selection([str(tmp_path / "pool.xyz")], [], options)
    assert len(calls) >= 30 // 4  # the counter does see featurisation


class ThreadPoolEngine:
    """A toy engine: the stages on a thread pool, results in item order, a window ahead (what
    adding an engine to fntk.engine takes)."""

    def __init__(self, backend, threads: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.backend = backend
        self.pool = ThreadPoolExecutor(threads)
        self.window = 2 * threads
        self.items = 0

    def map_chunks(self, stage, items):
        from collections import deque

        pending = deque()
        for item in items:
            self.items += 1
            if len(pending) >= self.window:
                yield pending.popleft().result()
            pending.append(self.pool.submit(stage, self.backend, item))
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        self.pool.shutdown()


@pytest.mark.parametrize("method", ["lcmd", "coverage", "coverage-density+target"])
def test_a_thread_pool_engine_picks_what_one_process_picks(tmp_path, mace_model_file, method):
    """Also with two rankings and a target sample (coverage-density covering target
    structures: three merges on the client, the nearness ranking shipped to the engine)."""
    from fntk.features.registry import load_backend_for

    frames = []
    for i in range(14):
        atoms = molecule(("CH4", "NH3", "H2O", "CH3OH")[i % 4])
        atoms.rattle(0.05, seed=i)
        frames.append(atoms)
    frames.append(frames[3].copy())  # a repeat: admitted on the client, never scored
    ase.io.write(tmp_path / "pool.xyz", frames)
    ase.io.write(tmp_path / "train.xyz", frames[:2])
    target = []
    if method.endswith("+target"):
        ase.io.write(tmp_path / "target.xyz", [frames[6], frames[11], frames[13]])
        target = [str(tmp_path / "target.xyz")]
    options = build_run_options(
        n=3,
        model=f"mace:{mace_model_file}",
        dim=4,
        chunk_size=3,
        device="cpu",
        shortlist=5,
        selector=method.removesuffix("+target"),
        target=target or None,
    )
    backend = load_backend_for(options.model, options.features)
    pool, train = [str(tmp_path / "pool.xyz")], [str(tmp_path / "train.xyz")]
    single = run_selection(pool, train, options, backend=backend)
    engine = ThreadPoolEngine(backend)
    try:
        threaded = run_selection(pool, train, options, backend=backend, engine=engine)
    finally:
        engine.close()
    if method == "lcmd":  # one train chunk, five pool chunks: every stage ran on it
        assert engine.items == 1 + 5
        assert single.pool_passes["pool_structures_featurised"] == 15
    elif target:  # and one target chunk; the whole pool (the nearness ranking needs it)
        assert engine.items == 1 + 1 + 5
        assert single.pool_passes["pool_structures_featurised"] == 15
        assert len(single.result.shortlist.source_index) > 5  # the union of three top-5 sets
    else:  # coverage: only the chunks holding its uniform sample of 5 (of 12 new) are sent
        assert engine.items < 1 + 5
        assert single.pool_passes["pool_structures_featurised"] == 5
    assert threaded.pool_passes == single.pool_passes
    np.testing.assert_array_equal(threaded.result.indices, single.result.indices)
    np.testing.assert_array_equal(threaded.result.scores, single.result.scores)
    assert threaded.shortlist == single.shortlist
    assert threaded.excluded_duplicates == single.excluded_duplicates
    assert len(threaded.excluded_duplicates) == 2 and len(threaded.pool_duplicates) == 1
