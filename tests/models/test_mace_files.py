"""MACE models as ``mace_run_train`` writes them: heads, compiled files, dtype, commands.

Every comparison is against mace-torch's own ``MACECalculator`` with the head given. The
two-head model (fixture ``two_head_files``) backs the default tests; the single-head model and
the benchmark runs are slow tests.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from typer.testing import CliRunner

from fntk.cli.main import app
from fntk.errors import InputError, ModelLoadError
from fntk.models import load_backend
from fntk.models._compat import quiet_third_party_imports

HEADS = ("A", "B")


def _calculator(path, head: str | None = None):
    from mace.calculators import MACECalculator

    kwargs = {"head": head} if head else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MACECalculator(
            model_paths=str(path), device="cpu", default_dtype="float64", **kwargs
        )


def _assert_matches_calculator(backend, calc, structures) -> None:
    for (energy, forces), atoms in zip(backend.predict(structures), structures):
        atoms = atoms.copy()
        atoms.calc = calc
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(forces.numpy(), atoms.get_forces(), atol=1e-5)


def test_multi_head_model_without_a_head_is_refused_listing_heads(two_head_files):
    path = two_head_files["two"]
    with pytest.raises(ModelLoadError, match=r"multi-head MACE model \(heads: A, B\).*@HEAD"):
        load_backend(f"mace:{path}", device="cpu")
    with pytest.raises(ModelLoadError, match=r"no head 'C'; its heads: A, B"):
        load_backend(f"mace:{path}@C", device="cpu")


@pytest.mark.parametrize("head", HEADS)
def test_each_head_matches_mace_calculator(two_head_files, cu_au_test_structures, head):
    path = two_head_files["two"]
    backend = load_backend(f"mace:{path}@{head}", device="cpu", dtype=torch.float64)
    assert backend.spec == f"mace:{os.path.abspath(path)}@{head}" and backend.head == head
    _assert_matches_calculator(backend, _calculator(path, head), cu_au_test_structures)


def test_heads_give_different_energies(two_head_files, cu_au_test_structures):
    """Head B has other E0s (Cu -1 eV, Au +2 eV): running head 0 for it would be wrong."""
    path = two_head_files["two"]
    energies = {
        head: [
            e
            for e, _ in load_backend(f"mace:{path}@{head}", device="cpu").predict(
                cu_au_test_structures
            )
        ]
        for head in HEADS
    }
    assert np.min(np.abs(np.subtract(energies["A"], energies["B"]))) > 0.1


def test_compiled_model_gives_the_eager_models_energies_forces_and_features(
    two_head_files, cu_au_test_structures
):
    from fntk.features import compute_features, default_options

    eager = load_backend(f"mace:{two_head_files['two']}@B", device="cpu", dtype=torch.float64)
    compiled = load_backend(
        f"mace:{two_head_files['two_compiled']}@B", device="cpu", dtype=torch.float64
    )
    assert compiled.spec.endswith("two_compiled.model@B")
    assert compiled.n_node_features == eager.n_node_features
    assert list(compiled.parameter_group("readout")) == list(eager.parameter_group("readout"))
    structures = cu_au_test_structures
    for (e1, f1), (e2, f2) in zip(eager.predict(structures), compiled.predict(structures)):
        assert e1 == pytest.approx(e2, abs=1e-10)
        torch.testing.assert_close(f1, f2, atol=1e-10, rtol=0)
    graph = eager.build_graph(structures)
    torch.testing.assert_close(eager(graph).node_features, compiled(graph).node_features)
    for name in ("embedding", "joint"):
        options = default_options(name, dtype="float64", device="cpu")
        a = compute_features(eager, structures, options)
        b = compute_features(compiled, structures, options)
        np.testing.assert_allclose(a.values, b.values, rtol=1e-9, atol=1e-12)
    _assert_matches_calculator(compiled, _calculator(two_head_files["two"], "B"), structures)


def test_dtype_float32_runs_close_to_float64(two_head_files, cu_au_test_structures):
    spec = f"mace:{two_head_files['two_compiled']}@A"
    single = load_backend(spec, device="cpu", dtype=torch.float32)
    double = load_backend(spec, device="cpu", dtype=torch.float64)
    assert single.dtype == torch.float32
    for (e1, f1), (e2, f2) in zip(
        single.predict(cu_au_test_structures), double.predict(cu_au_test_structures)
    ):
        assert e1 == pytest.approx(e2, abs=1e-4)
        torch.testing.assert_close(f1, f2, atol=1e-4, rtol=0)


def test_a_torchscript_file_that_is_not_mace_says_to_pass_name_model(tmp_path):
    path = tmp_path / "other_compiled.model"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    with pytest.raises(ModelLoadError, match="does not hold a MACE model"):
        load_backend(f"mace:{path}", device="cpu")


def test_feature_store_identity_includes_the_head(two_head_files, tmp_path):
    from fntk.features import default_options
    from fntk.features.store import FeatureStore

    options = default_options("embedding", device="cpu")
    spec_a = load_backend(f"mace:{two_head_files['two']}@A", device="cpu").spec
    spec_b = load_backend(f"mace:{two_head_files['two']}@B", device="cpu").spec
    FeatureStore.create(tmp_path / "store", options, spec_a, chunk_size=4, n_features=8)
    FeatureStore.create(tmp_path / "store", options, spec_a, chunk_size=4, n_features=8)
    with pytest.raises(InputError):
        FeatureStore.create(tmp_path / "store", options, spec_b, chunk_size=4, n_features=8)


def test_cli_predict_with_head_and_dtype_matches_mace_calculator(
    two_head_files, cu_au_test_structures, tmp_path
):
    structures = tmp_path / "in.xyz"
    ase.io.write(structures, cu_au_test_structures)
    out = tmp_path / "out.xyz"
    model = f"mace:{two_head_files['two']}@B"
    args = ["predict", str(structures), "-o", str(out), "-m", model, "--dtype", "float64"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    calc = _calculator(two_head_files["two"], "B")
    for written, atoms in zip(ase.io.read(out, ":"), cu_au_test_structures):
        assert written.info["fntk_model"].endswith("two.model@B")
        assert written.info["fntk_dtype"] == "float64"
        atoms = atoms.copy()
        atoms.calc = calc
        assert written.info["fntk_energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(written.arrays["fntk_forces"], atoms.get_forces(), atol=1e-5)


def test_cli_predict_multi_head_without_head_is_one_line(two_head_files, tmp_path):
    structures = tmp_path / "in.xyz"
    ase.io.write(structures, Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.4]]))
    args = ["predict", str(structures), "-o", str(tmp_path / "o.xyz")]
    result = CliRunner().invoke(app, [*args, "-m", f"mace:{two_head_files['two']}"])
    assert result.exit_code == 1
    assert "heads: A, B" in result.output and "Traceback" not in result.output


def _pool_with_silver(cu_au_test_structures) -> list[Atoms]:
    silver = Atoms("Ag2", positions=[[0, 0, 0], [0, 0, 2.6]])
    return [*cu_au_test_structures[:2], silver, *cu_au_test_structures[2:]]


def test_cli_select_records_head_dtype_and_skipped_structures(
    two_head_files, cu_au_test_structures, tmp_path
):
    pool = tmp_path / "pool.xyz"
    ase.io.write(pool, _pool_with_silver(cu_au_test_structures))
    model = f"mace:{two_head_files['two']}@A"
    base = ["select", str(pool), "-n", "2", "-m", model, "--features", "embedding"]
    base += ["--device", "cpu", "--quiet"]
    refused = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "refused")])
    assert refused.exit_code == 1 and "frame 2" in refused.output and "Ag" in refused.output

    out = tmp_path / "picked"
    args = [*base, "-o", str(out), "--dtype", "float64", "--skip-unsupported"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["model"].endswith("two.model@A")
    assert run["options"]["features"]["dtype"] == "float64"
    assert run["options"]["skip_unsupported"] is True
    assert run["skipped_unsupported"] == [
        {
            "split": "pool",
            "source_file": str(pool),
            "source_index": 2,
            "unsupported_elements": ["Ag"],
        }
    ]
    picked = ase.io.read(out / "selected.xyz", ":")
    assert len(picked) == 2 and all("Ag" not in a.get_chemical_symbols() for a in picked)
    assert all(a.info["fntk_source_index"] != 2 for a in picked)


def test_import_chatter_goes_to_the_debug_log(caplog):
    with caplog.at_level(logging.DEBUG, logger="fntk.models"):
        with quiet_third_party_imports():
            print("cuequivariance is not available")
            print("to stderr", file=sys.stderr)
            warnings.warn("constants.pt loaded", FutureWarning, stacklevel=1)
    messages = [r.getMessage() for r in caplog.records if r.name == "fntk.models"]
    assert "import: cuequivariance is not available" in messages
    assert "import: to stderr" in messages
    assert any("FutureWarning: constants.pt loaded" in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "fntk.models")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny", "tiny_compiled"])
def test_single_head_files_match_mace_calculator(single_head_files, cu_au_test_structures, name):
    backend = load_backend(f"mace:{single_head_files[name]}", device="cpu", dtype=torch.float64)
    assert "@" not in backend.spec and backend.heads == ["Default"]
    calc = _calculator(single_head_files["tiny"])
    _assert_matches_calculator(backend, calc, cu_au_test_structures)
    same = load_backend(f"mace:{single_head_files[name]}@Default", device="cpu")
    assert same.spec == load_backend(f"mace:{single_head_files[name]}", device="cpu").spec


@pytest.mark.slow
def test_terminal_stays_quiet_unless_verbose(two_head_files, tmp_path):
    """A fresh process: mace-torch prints its cuequivariance line on first import."""
    structures = tmp_path / "in.xyz"
    ase.io.write(structures, Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.4]]))
    model = f"mace:{two_head_files['two']}@A"
    args = ["predict", str(structures), "-o", str(tmp_path / "o.xyz"), "-m", model]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}

    def run(*extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "fntk.cli.main", *extra, *args, "--device", "cpu"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert "cuequivariance" not in quiet.stdout + quiet.stderr
    assert "Warning" not in quiet.stderr, quiet.stderr
    verbose = run("--verbose")
    assert verbose.returncode == 0 and "cuequivariance" in verbose.stderr


@pytest.mark.slow
def test_bench_finetune_reads_mace_label_keys_and_records_the_kept_step(
    two_head_files, mace_bench_splits, tmp_path
):
    """``fntk bench`` on a MACE head with REF_energy/REF_forces; an absurd learning rate makes
    every step worse than the pretrained weights, so early stopping keeps step 0 and the
    summary says so (the issue's case: identical force RMSEs for every method)."""
    from fntk.bench import build_bench_options, read_results, run_benchmark_files

    s = mace_bench_splits
    model = f"mace:{two_head_files['two']}@A"
    args = ["bench", "--init", s["init"], "--pool", s["pool"], "--test", f"test={s['test']}"]
    args += ["-m", model, "--learner", "finetune", "--quick", "--quiet", "--device", "cpu"]
    args += ["--methods", "random,embedding", "--threads", "1"]
    missing = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "nokeys")])
    assert missing.exit_code == 1 and "--energy-key" in missing.output
    keys = ["--energy-key", "REF_energy", "--forces-key", "REF_forces"]
    result = CliRunner().invoke(app, [*args, *keys, "-o", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path / "keys" / "results.csv")
    assert rows and all(r.n_steps_run == 3 and 0 <= r.n_steps_kept <= 3 for r in rows)

    options = build_bench_options(
        quick=True,
        model=model,
        device="cpu",
        methods=("random", "embedding"),
        learner="finetune",
        energy_key="REF_energy",
        forces_key="REF_forces",
        finetune={"learning_rate": 1e3, "validation_fraction": 0.25, "eval_every": 1},
    )
    run = run_benchmark_files(
        [s["init"]], [s["pool"]], {"test": [s["test"]]}, tmp_path / "api", options
    )
    assert all(r.n_steps_kept == 0 and r.n_steps_run > 0 for r in run.rows)
    assert "early stopping kept step 0" in run.summary
    assert len({r.force_rmse_mev_per_ang for r in run.rows if r.round == 1}) == 1
