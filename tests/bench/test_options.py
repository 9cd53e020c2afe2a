"""BenchOptions validation, the --quick preset and the feature cache round trip."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from fntk.bench import QUICK_PRESET, BenchOptions, build_bench_options
from fntk.bench.methods import load_feature_cache, save_feature_cache
from fntk.features import FORCE_ROW, FeatureChunk


def test_quick_preset_and_overrides():
    quick = build_bench_options(quick=True, batch=3, finetune={"scope": "all"})
    assert quick.rounds == QUICK_PRESET["rounds"] and quick.batch == 3
    assert quick.finetune.n_steps == QUICK_PRESET["finetune"]["n_steps"]
    assert quick.finetune.scope == "all"
    assert build_bench_options().finetune.n_steps == BenchOptions().finetune.n_steps


@pytest.mark.parametrize(
    "bad",
    [{"methods": ()}, {"methods": ("random", "random")}, {"batch": 0}, {"methods": ("bald",)}],
)
def test_invalid_options(bad):
    with pytest.raises(ValidationError):
        BenchOptions(**bad)


def test_resume_key_ignores_the_extent():
    a = BenchOptions(rounds=1, n_seeds=1, methods=("random",))
    assert a.resume_key() == BenchOptions(rounds=5, n_seeds=3).resume_key()
    assert a.resume_key() != BenchOptions(batch=3).resume_key()


def test_feature_cache_round_trip(tmp_path):
    chunk = FeatureChunk(
        values=np.arange(12.0).reshape(4, 3),
        offsets=np.array([0, 1, 4]),
        source_index=np.array([5, 9]),
        n_atoms=np.array([1, 1]),
        row_kind=np.array([0, FORCE_ROW, FORCE_ROW, FORCE_ROW], dtype=np.int8),
    )
    path = tmp_path / "joint.npz"
    save_feature_cache(path, "key-1", chunk, chunk.subset([1]), 12.5)
    init, pool, seconds = load_feature_cache(path, "key-1")
    np.testing.assert_array_equal(init.values, chunk.values)
    assert pool.source_index.tolist() == [9] and seconds == 12.5
    assert load_feature_cache(path, "other options") is None
    assert load_feature_cache(tmp_path / "absent.npz", "key-1") is None


def test_budgets_replace_rounds_and_batch():
    options = BenchOptions(budgets=(16, 32, 64), rounds=1, batch=3)
    assert options.batch_sizes == (16, 16, 32) and options.n_rounds == 3
    assert BenchOptions(rounds=2, batch=5).batch_sizes == (5, 5)
    for bad in [(16, 16), (32, 16), (0, 4)]:
        with pytest.raises(ValidationError, match="increasing"):
            BenchOptions(budgets=bad)
    assert BenchOptions(budgets=(1, 2)).resume_key() != BenchOptions(budgets=(1, 3)).resume_key()
