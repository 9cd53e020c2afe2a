"""lambda of the joint map is derived once, from the fine-tuning loss, and used by every path."""

from __future__ import annotations

import inspect
import math

import ase.io
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from fntk.features import force_row_weight
from fntk.features.options import (
    DEFAULT_ENERGY_WEIGHT,
    DEFAULT_FORCES_WEIGHT,
    MAX_FORCE_ROW_WEIGHT,
)
from fntk.learn import FinetuneOptions
from fntk.learn.ridge import ReadoutDesign, _NormalEquations


def test_formula_units_and_limits():
    assert force_row_weight(1.0, 100.0, 3) == pytest.approx(10 / 3)
    assert force_row_weight(2.0, 100.0, [2, 4, 6]) == pytest.approx(math.sqrt(100 / (3 * 4 * 2)))
    assert force_row_weight(0.0, 1.0, 5) == MAX_FORCE_ROW_WEIGHT
    assert force_row_weight(1.0, 0.0, 5) > 0
    with pytest.raises(ValueError, match=">= 0"):
        force_row_weight(-1.0, 1.0, 5)
    with pytest.raises(ValueError, match="no atom counts"):
        force_row_weight(1.0, 1.0, [])


def test_defaults_are_the_fine_tuning_defaults():
    finetune = FinetuneOptions()
    assert (DEFAULT_ENERGY_WEIGHT, DEFAULT_FORCES_WEIGHT) == (
        finetune.energy_weight,
        finetune.force_weight,
    )
    from fntk.cli.features_cmd import features
    from fntk.cli.select_cmd import select

    for command in (select, features):
        parameters = inspect.signature(command).parameters
        assert parameters["energy_weight"].default == finetune.energy_weight
        assert parameters["forces_weight"].default == finetune.force_weight


@pytest.mark.parametrize(("w_e", "w_f"), [(1.0, 100.0), (3.0, 0.5)])
def test_weighted_rows_reproduce_the_fine_tuning_loss(w_e, w_f):
    """sum Phi^T Phi with [e / N ; lambda G] is proportional to the loss's Gauss-Newton matrix.

    The matrix is the ridge learner's (``w_E mean_s (dE_s/N_s)^2 + w_F mean_c dF_c^2``, the
    fine-tuning loss of :class:`fntk.learn.FinetuneOptions`), on structures of different sizes.
    """
    rng = np.random.default_rng(0)
    d, sizes = 5, [2, 3, 7, 12]
    designs = [
        ReadoutDesign(
            numbers=np.ones(n, dtype=np.int64),
            energy=0.0,
            forces=np.zeros((n, 3)),
            energy_row=rng.normal(size=d),
            force_rows=rng.normal(size=(3 * n, d)),
        )
        for n in sizes
    ]
    options = FinetuneOptions(energy_weight=w_e, force_weight=w_f)
    targets_f = [np.zeros(3 * n) for n in sizes]
    loss = _NormalEquations(designs, np.zeros(len(sizes)), targets_f, options, range(len(sizes)))
    lam = force_row_weight(w_e, w_f, sizes)
    gram = sum(
        np.outer(x.energy_row, x.energy_row) / n**2 + lam**2 * x.force_rows.T @ x.force_rows
        for x, n in zip(designs, sizes)
    )
    np.testing.assert_allclose(loss.matrix, w_e / len(sizes) * gram, rtol=1e-12)
    # The per-structure or median atom count would not: lambda must use the mean.
    wrong = force_row_weight(w_e, w_f, float(np.median(sizes)))
    assert not np.isclose(wrong, lam, rtol=1e-3)


def test_select_features_and_bench_use_the_same_lambda(
    monkeypatch, tmp_path, small_structures, mace_model_file
):
    from fntk.bench.methods import joint_force_weight
    from fntk.bench.options import BenchOptions
    from fntk.cli.features_cmd import features
    from fntk.cli.select_cmd import select
    from fntk.features.store import FeatureStore

    train = tmp_path / "train.xyz"
    ase.io.write(train, small_structures)
    expected = force_row_weight(1.0, 100.0, [len(a) for a in small_structures])
    assert joint_force_weight(BenchOptions(), small_structures) == pytest.approx(expected)

    app = typer.Typer()
    app.command()(features)
    app.command()(select)
    model = f"mace:{mace_model_file}"
    out = tmp_path / "store"
    args = ["features", str(train), "-o", str(out), "--model", model, "--dim", "2"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert FeatureStore.open(out).options.force_weight == pytest.approx(expected)

    seen = {}

    def capture(pool, train, out_dir, options, **kwargs):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr("fntk.pipeline.run_and_write", capture)
    args = ["select", str(tmp_path / "pool.xyz"), "-o", str(tmp_path / "sel"), "-t", str(train)]
    candidate = small_structures[0].copy()
    candidate.positions[0] += 0.05  # not a copy of a training structure (that is refused)
    ase.io.write(tmp_path / "pool.xyz", [candidate])
    CliRunner().invoke(app, [*args, "-n", "1", "--model", model, "--device", "cpu"])
    from fntk.pipeline import build_run_options
    from fntk.pipeline.job import with_loss_weights

    effective = with_loss_weights(seen["options"], [str(train)])
    assert effective.features.force_weight == pytest.approx(expected)

    for w_e, w_f in ((1.0, 100.0), (2.0, 10.0)):
        options = with_loss_weights(
            build_run_options(energy_weight=w_e, forces_weight=w_f), [str(train)]
        )
        sizes = [len(a) for a in small_structures]
        assert options.features.force_weight == pytest.approx(force_row_weight(w_e, w_f, sizes))
