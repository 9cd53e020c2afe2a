"""One benchmark round end to end: data set on disk, fine-tune, errors per split (slow)."""

from __future__ import annotations

import pytest

from fntk.data import make_dataset
from fntk.learn import FinetuneOptions, LabelledSet, evaluate_splits, finetune


@pytest.mark.slow
def test_emt_adsorbates_round_lowers_errors_on_every_split(sevennet, tmp_path):
    sizes = {"init": 12, "pool": 0, "test_id": 6, "test_ood-ads": 6, "test_ood-cat": 6}
    files = make_dataset("emt-adsorbates", tmp_path, sizes={**sizes, "test_ood-both": 0})
    splits = {name: LabelledSet.from_files([str(path)]) for name, path in files.splits.items()}
    tests = {name: s for name, s in splits.items() if name.startswith("test")}
    before = evaluate_splits(sevennet, tests)
    options = FinetuneOptions(n_steps=10, batch_size=4, learning_rate=3e-3)
    reference = LabelledSet.from_files([str(files.e0_reference)])
    result = finetune(sevennet, splits["init"], options, seed=0, e0_reference=reference)
    after = evaluate_splits(sevennet, tests, energy_shift=result.energy_shift)
    assert len(result.validation_indices) == 1 and result.curve[-1].validation_loss is not None
    for name in tests:
        assert after[name].energy_mae_mev_per_atom < before[name].energy_mae_mev_per_atom / 10
        assert after[name].force_rmse_mev_per_ang < before[name].force_rmse_mev_per_ang
