"""``fntk bench`` and ``fntk data make`` through typer's CliRunner.

The commands are registered here on a local app, the way ``fntk.cli.main`` registers them, so
these tests do not depend on the main app's wiring. The end-to-end run is marked slow.
"""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from fntk.bench import METHOD_NAMES, read_results
from fntk.cli.bench_cmd import bench
from fntk.cli.data_cmd import data_app, make
from fntk.cli.main import user_errors_as_one_line

TINY_SIZES = {
    "init": 4,
    "pool": 14,
    "test_id": 3,
    "test_ood-ads": 2,
    "test_ood-cat": 0,
    "test_ood-both": 0,
}


def app() -> typer.Typer:
    local = typer.Typer(pretty_exceptions_enable=False)
    local.command()(user_errors_as_one_line(bench))
    group = typer.Typer()
    group.command("make")(user_errors_as_one_line(make))
    local.add_typer(group, name="data")
    return local


def test_data_make(tmp_path):
    sizes = [f"--size={split}={n}" for split, n in TINY_SIZES.items()]
    result = CliRunner().invoke(
        app(), ["data", "make", "emt-adsorbates", "-o", str(tmp_path), "--seed", "1", *sizes]
    )
    assert result.exit_code == 0, result.output
    for name in ("init.xyz", "pool.xyz", "test_id.xyz", "e0_reference.xyz", "README.md"):
        assert (tmp_path / name).is_file()
    assert not (tmp_path / "test_ood-cat.xyz").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "make", "no-such-set", "-o", "x"], "unknown data set"),
        (["data", "make", "emt-adsorbates", "-o", "x", "--size", "train=3"], "no split"),
    ],
)
def test_data_make_errors(tmp_path, args, message):
    args = [str(tmp_path / a) if a == "x" else a for a in args]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 1
    assert message in result.output
    assert data_app.info.help  # the group main.py registers make on


def test_data_make_malformed_size_is_a_usage_error(tmp_path):
    args = ["data", "make", "emt-adsorbates", "-o", str(tmp_path / "x"), "--size", "pool"]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 2
    assert "not SPLIT=N" in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()


def bench_args(data_dir, out) -> list[str]:
    return [
        "bench",
        "--init",
        str(data_dir / "init.xyz"),
        "--pool",
        str(data_dir / "pool.xyz"),
        "--test",
        f"test_id={data_dir / 'test_id.xyz'}",
        "--test",
        str(data_dir / "test_ood-ads.xyz"),
        "--e0-reference",
        str(data_dir / "e0_reference.xyz"),
        "-o",
        str(out),
    ]


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [
        (["--pool-shift", "elements:Pt"], "pool shift", 1),
        (["--relative-noise", "0"], "relative_noise", 1),
        (["--joint-lambda", "0"], "joint_force_weight", 1),
        (["--budgets", "16,8"], "increasing", 1),
        # malformed values and conflicting flags are usage errors (exit 2), as the README says
        (["--budgets", "16,x"], "comma-separated list of whole numbers", 2),
        (["--budgets", "16,32", "--rounds", "2"], "replaces --rounds and --batch", 2),
    ],
)
def test_bench_option_errors(tmp_path, extra, message, code):
    from fntk.cli.main import app as fntk_app  # the real app: plain usage errors, not boxed

    args = ["bench", "--init", "i.xyz", "--pool", "p.xyz", "--test", "t.xyz", "-o", "o", *extra]
    result = CliRunner().invoke(fntk_app, args)
    assert result.exit_code == code, result.output
    assert message in result.output


@pytest.mark.parametrize(
    ("extra", "choices"),
    [
        (["--committee-aggregation", "median"], ("mean", "max")),
        (["--learner", "adam"], ("ridge", "finetune")),
        (["--proxy-learner", "finetune"], ("ridge",)),
        (["--scope", "head"], ("readout", "last-interaction", "all")),
        (["--methods", "random,bald"], ("bald", "random", "committee", "joint")),
    ],
)
def test_bench_unknown_choice_is_a_usage_error_listing_the_choices(tmp_path, extra, choices):
    out = tmp_path / "o"
    args = ["bench", "--init", "i.xyz", "--pool", "p.xyz", "--test", "t.xyz", "-o", str(out)]
    result = CliRunner().invoke(app(), [*args, *extra])
    assert result.exit_code == 2, result.output
    assert all(f"'{c}'" in result.output for c in choices) and not out.exists()


def test_bench_refuses_foreign_output_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    args = ["bench", "--init", "i.xyz", "--pool", "p.xyz", "--test", "t.xyz", "-o", str(tmp_path)]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 1
    assert "holds no benchmark state" in result.output


def test_bench_accepts_the_feature_cache_of_a_killed_run(tmp_path):
    """A run killed while computing designs leaves only features/; a rerun must resume it
    (here it then fails on the missing input file, after the directory check)."""
    (tmp_path / "features" / "designs-x").mkdir(parents=True)
    args = ["bench", "--init", "i.xyz", "--pool", "p.xyz", "--test", "t.xyz", "-o", str(tmp_path)]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 1
    assert "holds no benchmark state" not in result.output
    assert "i.xyz" in result.output
    assert (tmp_path / "features" / "designs-x").is_dir()


@pytest.mark.parametrize("learner", ["ridge", pytest.param("finetune", marks=pytest.mark.slow)])
def test_bench_quick_end_to_end(tmp_path, learner):
    """Every method runs one quick round on a tiny emt-adsorbates set (ridge: under a
    minute; finetune: a few CPU minutes, marked slow)."""
    from fntk.data import make_dataset

    data_dir = tmp_path / "data"
    make_dataset("emt-adsorbates", data_dir, sizes=TINY_SIZES, seed=0)
    out = tmp_path / "results"
    result = CliRunner().invoke(
        app(),
        [*bench_args(data_dir, out), "--quick", "--quiet", "--threads", "1", "--learner", learner],
    )
    assert result.exit_code == 0, result.output
    for name in ("results.csv", "state.json", "summary.md", "learning_curves.png"):
        assert (out / name).stat().st_size > 0
    rows = read_results(out / "results.csv")
    assert {(r.method, r.round, r.split) for r in rows} == {
        (m, r, s) for m in METHOD_NAMES for r in (0, 1) for s in ("test_id", "test_ood-ads")
    }
    assert {r.n_labels for r in rows} == {4, 6}
    assert all(r.force_rmse_mev_per_ang > 0 for r in rows)
    for name in ("embedding", "energy-ntk", "force-ntk", "joint"):
        assert (out / "features" / f"{name}.npz").is_file()
    committee = [r for r in rows if r.method == "committee" and r.round == 1]
    assert all(r.seconds_training > 0 for r in committee)  # members 1..3 were fine-tuned
    assert all((r.n_steps_run > 0) == (learner == "finetune") for r in rows)
    summary = (out / "summary.md").read_text()
    assert "labels to reach random's final force RMSE" in summary
    assert all(f"| {m} |" in summary for m in METHOD_NAMES)
    # Predicted errors, calibrated on a held-out slice of the 4 or 6 labels, on every split
    assert all(r.predicted_force_rmse_mev_per_ang > 0 for r in rows)
    assert all(-1 <= r.force_rmse_spearman <= 1 for r in rows if r.split == "test_id")
    assert all(r.seconds_estimates > 0 for r in rows)
    assert "## Predicted vs measured test force RMSE" in summary
    assert "Cost of the estimates:" in summary


def test_bench_maps_the_feature_and_select_flags_as_select_does(tmp_path, monkeypatch):
    """--dim, --group, --batch-size, --selector, --shortlist, --cost-aware (fntk select's
    flags) and --relative-noise land in BenchOptions.features/select, on top of --quick and a
    --config that sets what no flag does (the joint map's basis and reference)."""
    import fntk.bench
    from fntk.errors import InputError
    from fntk.select.options import DEFAULT_COST_EXPONENT

    built = {}
    real = fntk.bench.build_bench_options

    def capture(**kwargs):
        built["options"] = real(**kwargs)
        raise InputError("stop here: the options are built")

    monkeypatch.setattr(fntk.bench, "build_bench_options", capture)
    config = tmp_path / "bench.yaml"
    config.write_text("features: {basis: pca, reference: builtin-v2}\nselect: {mode: p}\n")
    flags = ["--dim", "6", "--group", "all", "--batch-size", "3", "--selector", "lcmd"]
    flags += ["--shortlist", "50", "--cost-aware", "--relative-noise", "1e-4", "--quick"]
    args = ["bench", "--init", "i.xyz", "--pool", "p.xyz", "--test", "t.xyz", "-o", "o"]
    result = CliRunner().invoke(app(), [*args, *flags, "--config", str(config)])
    assert result.exit_code == 1 and "stop here" in result.output, result.output
    options = built["options"]
    features, select = options.features, options.select
    assert (features.dim, features.group, features.batch_size) == (6, "all", 3)
    assert (features.basis, features.reference) == ("pca", "builtin-v2")
    assert (select.method, select.shortlist_size, select.relative_noise) == ("lcmd", 50, 1e-4)
    assert select.cost_exponent == DEFAULT_COST_EXPONENT and select.mode == "p"
    assert options.n_seeds == 1  # --quick


def test_bench_fine_tuning_flags_land_in_finetune_options(monkeypatch):
    """--scope, --steps and --epochs set BenchOptions.finetune (min_epochs for --epochs)."""
    import fntk.bench
    from fntk.errors import InputError

    built = {}
    real = fntk.bench.build_bench_options

    def capture(**kwargs):
        built["options"] = real(**kwargs)
        raise InputError("stop here: the options are built")

    monkeypatch.setattr(fntk.bench, "build_bench_options", capture)
    args = ["bench", "--init", "i.xyz", "--pool", "p.xyz", "--test", "t.xyz", "-o", "o"]
    flags = ["--scope", "all", "--steps", "50", "--epochs", "10"]
    result = CliRunner().invoke(app(), [*args, *flags])
    assert result.exit_code == 1 and "stop here" in result.output, result.output
    tuning = built["options"].finetune
    assert (tuning.scope, tuning.n_steps, tuning.min_epochs) == ("all", 50, 10.0)
