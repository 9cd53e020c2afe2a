"""``fntk features`` through typer's CliRunner: store written, resumed, bad options refused."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from fntk.cli.features_cmd import features
from fntk.features.store import FeatureStore


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command()(features)
    app.command("other")(lambda: None)  # two commands: typer keeps the subcommand name
    return app


def test_writes_and_resumes(app, tmp_path, small_structures, mace_model_file):
    pool = tmp_path / "pool.xyz"
    ase.io.write(pool, small_structures)
    out = tmp_path / "feats"
    args = ["features", str(pool), "-o", str(out), "--model", f"mace:{mace_model_file}"]
    args += ["--map", "joint", "--dim", "3", "--chunk-size", "2", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 structures" in result.output
    store = FeatureStore.open(out)
    assert store.chunk_ids() == [0, 1] and store.options.dim == 3
    features = store.read_all()
    np.testing.assert_array_equal(features.source_index, [0, 1, 2])
    np.testing.assert_array_equal(features.n_atoms, [len(a) for a in small_structures])

    (out / "chunk-000001.npz").unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "features of 1 structures" in result.output and "2 already there" in result.output
    np.testing.assert_array_equal(FeatureStore.open(out).read_all().values, features.values)


def test_mismatched_resume_and_bad_option_fail(app, tmp_path, small_structures, mace_model_file):
    from fntk.errors import FntkError

    pool = tmp_path / "pool.xyz"
    ase.io.write(pool, small_structures[:1])
    base = ["features", str(pool), "-o", str(tmp_path / "f"), "--model", f"mace:{mace_model_file}"]
    assert CliRunner().invoke(app, [*base, "--dim", "2"]).exit_code == 0
    result = CliRunner().invoke(app, [*base, "--dim", "3"])
    assert isinstance(result.exception, FntkError) and "option dim" in str(result.exception)
    result = CliRunner().invoke(app, [*base, "--map", "embedding", "--force-weight", "2"])
    assert isinstance(result.exception, FntkError) and "force_weight" in str(result.exception)
