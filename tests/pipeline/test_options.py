"""RunOptions parsed once: defaults, then a config file (YAML/TOML/JSON/run.json), then flags."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from fntk.cli.main import app
from fntk.errors import InputError
from fntk.pipeline import RunOptions, apply_flags, build_run_options, load_run_options


def test_defaults_come_from_the_component_options_classes():
    options = build_run_options()
    assert options == RunOptions()
    assert options.features.name == "joint" and options.select.method == "coverage"


def test_flags_map_onto_the_nested_options():
    options = build_run_options(
        n=7, features="energy-ntk", selector="maxdet", dim=16, shortlist=50, cost_aware=True, seed=3
    )
    assert (options.n, options.seed) == (7, 3)
    assert (options.features.name, options.features.dim, options.features.seed) == (
        "energy-ntk",
        16,
        3,
    )
    assert options.select.method == "maxdet" and options.select.shortlist_size == 50
    assert options.select.cost_exponent == 3.0


def test_a_flag_that_does_not_apply_is_an_error():
    with pytest.raises(InputError, match="--dim do\\(es\\) not apply to the 'embedding'"):
        build_run_options(features="embedding", dim=5)
    with pytest.raises(InputError, match="unknown option"):
        apply_flags(RunOptions(), sigma=1.0)


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
def test_config_file_then_flags_override(tmp_path, suffix):
    data = {"n": 9, "features": {"name": "joint", "dim": 20}, "select": {"method": "bait"}}
    path = tmp_path / f"run{suffix}"
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump(data))
    elif suffix == ".toml":
        path.write_text('n = 9\n[features]\nname = "joint"\ndim = 20\n[select]\nmethod = "bait"\n')
    else:
        path.write_text(json.dumps(data))
    from_file = load_run_options(path)
    assert (from_file.n, from_file.features.dim, from_file.select.method) == (9, 20, "bait")
    overridden = load_run_options(path, n=4, selector="lcmd")
    assert (overridden.n, overridden.features.dim, overridden.select.method) == (4, 20, "lcmd")


def test_a_run_json_reproduces_its_options(tmp_path):
    options = build_run_options(n=5, features="force-ntk", dim=6, seed=2)
    record = {"fntk_version": "x", "options": json.loads(options.model_dump_json())}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(record))
    assert load_run_options(path) == options


def test_bad_config_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "run.yaml"
    bad.write_text("n: [unclosed\n")
    with pytest.raises(InputError, match=r"run\.yaml: config does not parse"):
        load_run_options(bad)
    wrong = tmp_path / "run.yaml"
    wrong.write_text("n: 3\nselect: {method: lcdm}\n")
    with pytest.raises(InputError, match="unknown selector 'lcdm'"):
        load_run_options(wrong)
    with pytest.raises(InputError, match=r"unknown config format '\.ini'"):
        (tmp_path / "run.ini").write_text("")
        load_run_options(tmp_path / "run.ini")


def test_cli_reports_a_bad_config_before_any_work(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("features: {name: joint, dim: 0}\n")
    result = CliRunner().invoke(
        app, ["select", "pool.xyz", "-o", str(tmp_path / "out"), "--config", str(config)]
    )
    assert result.exit_code == 1
    assert "features.joint.dim" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_execution_options_come_from_flags_and_config_and_do_not_block_resume(tmp_path):
    from pathlib import Path

    from fntk.io.outdir import check_resumable

    options = build_run_options(store="feats", workers=2, resume=True, output="out")
    assert options.execution.store == Path("feats") and options.execution.workers == 2
    assert options.execution.output == Path("out")
    assert options.executed_with(workers=0).execution.workers == 0
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"n": 5, "execution": {"scheduler": "tcp://host:8786"}}))
    from_config = load_run_options(config)
    assert (from_config.n, from_config.execution.scheduler) == (5, "tcp://host:8786")
    assert load_run_options(config, scheduler="tcp://b:1").execution.scheduler == "tcp://b:1"
    config.write_text(json.dumps({"n": 5}))  # the old flat shape, without "execution"
    assert load_run_options(config).execution == RunOptions().execution
    with pytest.raises(InputError, match="--workers and --scheduler exclude each other"):
        build_run_options(workers=2, scheduler="tcp://host:8786")

    run = tmp_path / "run"
    run.mkdir()
    recorded = json.loads(RunOptions().model_dump_json())
    inputs = {"pool": ["pool.xyz"], "train": []}
    (run / "run.json").write_text(
        json.dumps({"status": "running", "options": recorded, "inputs": inputs})
    )
    asked = json.loads(options.model_dump_json())
    with pytest.raises(InputError, match=r"option execution\.workers: recorded 0, asked for 2"):
        check_resumable(run, options=asked, inputs=inputs)
    check_resumable(run, options=asked, inputs=inputs, ignore=("execution",))


def test_target_is_an_option_that_resume_compares(tmp_path):
    """--target is RunOptions.target (run.json, --config); a run started before the field
    existed (no "target" recorded) resumes without one, and a resume with other target files
    is refused."""
    from fntk.io.outdir import check_resumable

    options = build_run_options(target=["t.xyz"])
    assert options.target == ("t.xyz",) and RunOptions().target == ()
    config = tmp_path / "config.json"
    config.write_text(options.model_dump_json())
    assert load_run_options(config).target == ("t.xyz",)
    run = tmp_path / "run"
    run.mkdir()
    older = json.loads(RunOptions().model_dump_json())
    del older["target"]
    inputs = {"pool": ["pool.xyz"], "train": []}
    record = {"status": "running", "options": older, "inputs": inputs}
    (run / "run.json").write_text(json.dumps(record))
    defaults = json.loads(RunOptions().model_dump_json())
    asked = json.loads(RunOptions().model_dump_json())
    with pytest.raises(InputError, match="option target: recorded None"):
        check_resumable(run, options=asked, inputs=inputs)
    check_resumable(run, options=asked, inputs=inputs, defaults=defaults)
    other = json.loads(options.model_dump_json())
    with pytest.raises(InputError, match=r"option target: recorded \[\], asked for \['t.xyz'\]"):
        check_resumable(run, options=other, inputs=inputs, defaults=defaults)
