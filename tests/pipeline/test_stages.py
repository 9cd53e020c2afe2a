"""Stages of the distributed pool pass: the merge equals the streamed shortlist, memory is flat,
and the count pass stops a bad pool before any featurisation."""

from __future__ import annotations

import tracemalloc

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from fntk.chunk import ENERGY_ROW, FORCE_ROW, FeatureChunk
from fntk.errors import InputError
from fntk.pipeline import build_run_options, run_selection
from fntk.pipeline.stages import ShortlistMerge, score_features, shortlist_random_key
from fntk.select import SelectOptions, Selector, build_shortlist, factorize_precision


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


def merged_stream(chunks, prec, options, size, random_key=None):
    """What fntk.parallel does with scored chunks, in-process: the bar at submission time is
    the bar after the chunks merged so far."""
    merge = ShortlistMerge(size)
    for chunk in chunks:
        merge.offer(score_features(chunk, [], prec, options, random_key, merge.bar()))
    return merge


@pytest.mark.parametrize("method", ["lcmd", "random", "coverage"])
def test_merge_keeps_the_streamed_shortlist_in_any_order(method):
    dim, size = 6, 40
    rng = np.random.default_rng(0)
    chunks = [synthetic_chunk(50 * k, 50, dim, rng) for k in range(12)]
    prec = precision(dim)
    options = SelectOptions(method=method, shortlist_size=size)
    key = shortlist_random_key(options, seed=3)
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
        merge = merged_stream([chunks[k] for k in order], prec, options, size, key)
        candidates = merge.candidates()
        assert sorted(candidates.source_index) == sorted(streamed.source_index)
        position = {s: i for i, s in enumerate(candidates.source_index)}
        for j, source in enumerate(streamed.source_index):
            np.testing.assert_array_equal(
                candidates.block(position[source]), streamed.chunk.block(j)
            )
        # the bar filters: far fewer blocks than the pool travel back
        assert merge.n_stored <= 3 * size
    picked = Selector(options).fit([]).select([candidates], n=5, random_state=3)
    direct = Selector(options).fit([]).select(chunks, n=5, random_state=3)
    np.testing.assert_array_equal(picked.indices, direct.indices)


def scoring_peak_bytes(n_pool: int, chunk_size: int = 250, dim: int = 8) -> int:
    """tracemalloc peak of scoring + merging ``n_pool`` synthetic structures (chunks made one
    at a time, as a store or a worker hands them over)."""
    prec = precision(dim)
    options = SelectOptions(shortlist_size=200)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    merge = merged_stream(
        (synthetic_chunk(k, chunk_size, dim, rng) for k in range(0, n_pool, chunk_size)),
        prec,
        options,
        200,
    )
    candidates = merge.candidates()
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
