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


def test_features_and_select_are_the_options_fntk_select_nests():
    from fntk.features import JointNTKOptions
    from fntk.select import SelectOptions

    options = BenchOptions()
    assert options.features == JointNTKOptions() and options.select == SelectOptions()
    custom = BenchOptions(features={"basis": "sketch", "dim": 32, "reference": "builtin-v1"})
    assert (custom.features.basis, custom.features.dim) == ("sketch", 32)
    assert custom.resume_key() != options.resume_key()  # the basis changes what a round means
    on_cpu = BenchOptions(device="cpu", features={"device": "cpu"})
    assert on_cpu.resume_key() == options.resume_key()  # the device changes no pick
    with pytest.raises(ValidationError, match="--device"):
        BenchOptions(device="cpu", features={"device": "cuda"})
    with pytest.raises(ValidationError, match="float32"):
        BenchOptions(features={"dtype": "float64"})


# The "options" of a state.json written before BenchOptions nested its feature and selection
# options (benchmarks/results/active-learning-finetune-2026-12-06/runs/xtb-md-joint), trimmed.
OLD_RESUME_KEY = {
    "batch": 10,
    "budgets": [16, 32, 64, 128],
    "model": "sevennet-0",
    "learner": "finetune",
    "proxy_learner": None,
    "tail_fraction": 0.05,
    "finetune": {"scope": "all", "n_steps": 50},
    "selector": "coverage",
    "shortlist_size": None,
    "relative_noise": 1e-06,
    "feature_dim": 32,
    "joint_force_weight": None,
    "committee_size": 3,
    "committee_aggregation": "mean",
    "pool_shift": [],
    "max_pool": 1000,
    "energy_key": None,
    "forces_key": None,
}


def test_old_flat_keys_map_to_the_nested_options():
    same = BenchOptions(
        budgets=(16, 32, 64, 128),
        learner="finetune",
        finetune={"scope": "all", "n_steps": 50},
        committee_size=3,
        max_pool=1000,
        features={"basis": "sketch", "dim": 32, "reference": "builtin-v1"},  # the default then
    )
    assert BenchOptions.stored_resume_key(OLD_RESUME_KEY) == same.resume_key()
    today = BenchOptions(**same.model_dump(exclude={"features"}))  # the PCA default
    assert BenchOptions.stored_resume_key(OLD_RESUME_KEY) != today.resume_key()
    other = same.model_copy(update={"features": same.features.model_copy(update={"dim": 8})})
    assert BenchOptions.stored_resume_key(OLD_RESUME_KEY) != other.resume_key()
    assert BenchOptions.stored_resume_key({"feature_dim": 0}) == {"feature_dim": 0}  # invalid
    old = BenchOptions(feature_dim=8, selector="lcmd", shortlist_size=50, relative_noise=1e-4)
    assert old == BenchOptions(
        features={"dim": 8},
        select={"method": "lcmd", "shortlist_size": 50, "relative_noise": 1e-4},
    )
    with pytest.raises(ValidationError, match="same option"):
        BenchOptions(feature_dim=8, features={"dim": 8})


def test_min_epochs_is_part_of_the_resume_key():
    """A state written before ``min_epochs`` existed resumes as 0 (what it ran); rounds
    trained for more epochs are other rounds."""
    longer = build_bench_options(finetune={"scope": "all", "n_steps": 50, "min_epochs": 10})
    assert longer.finetune.min_epochs == 10 and longer.finetune.n_steps == 50
    stored = BenchOptions.stored_resume_key(OLD_RESUME_KEY)
    assert stored["finetune"]["min_epochs"] == 0
    assert longer.resume_key()["finetune"] != stored["finetune"]


def test_layers_change_only_the_fields_they_give():
    options = build_bench_options(
        quick=True,
        config={"features": {"basis": "pca"}, "select": {"method": "lcmd"}, "feature_dim": 12},
        select={"shortlist_size": 40},
    )
    assert options.features.dim == 12 and options.features.basis == "pca"  # config over preset
    assert options.select.method == "lcmd" and options.select.shortlist_size == 40
    assert options.finetune.n_steps == QUICK_PRESET["finetune"]["n_steps"]
    assert build_bench_options(quick=True).features.dim == QUICK_PRESET["features"]["dim"]
