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


def test_writes_and_resumes(app, tmp_path, small_structures, mace_model_file, monkeypatch):
    import fntk.io.read as read

    pool = tmp_path / "pool.xyz"
    ase.io.write(pool, small_structures)
    out = tmp_path / "feats"
    args = ["features", str(pool), "-o", str(out), "--model", f"mace:{mace_model_file}"]
    args += ["--map", "joint", "--dim", "3", "--chunk-size", "2", "--device", "cpu"]
    passes: list[str] = []
    real_iread = read._iread

    def counting_iread(spec, *args, **kwargs):
        passes.append(spec)
        return real_iread(spec, *args, **kwargs)

    monkeypatch.setattr(read, "_iread", counting_iread)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert passes == [str(pool), str(pool)]  # count (and lambda's atom count), then features
    assert "2 chunks computed, 0 already" in result.output
    store = FeatureStore.open(out)
    assert store.options.dim == 3 and len(store.weights_hash) == 32
    features = store.read_source(pool)
    np.testing.assert_array_equal(features.source_index, [0, 1, 2])
    np.testing.assert_array_equal(features.n_atoms, [len(a) for a in small_structures])

    from fntk.features.store import file_sha256

    second = store.chunk_path(1, file_sha256(pool))
    second.write_bytes(second.read_bytes()[:-40])  # truncated: detected, recomputed
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 chunks computed, 1 already" in result.output
    np.testing.assert_array_equal(FeatureStore.open(out).read_source(pool).values, features.values)


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
