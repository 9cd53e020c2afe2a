"""``fntk select`` (and ``predict``) straight on released data-set files, provenance kept."""

from __future__ import annotations

import csv

import ase.io
import pytest
from typer.testing import CliRunner

from fntk.cli.main import app

runner = CliRunner()
SELECT_ARGS = ["--features", "joint", "--dim", "8", "--device", "cpu", "--batch-size", "4"]


def select(pool: list[str], out, n: int, *extra: str):
    result = runner.invoke(
        app, ["select", *pool, "-n", str(n), "-o", str(out), *SELECT_ARGS, "--quiet", *extra]
    )
    assert result.exit_code == 0, result.output
    return ase.io.read(out / "selected.xyz", ":")


def test_select_on_transition1x_test_split_traces_picks_to_reactions(t1x_file, tmp_path):
    path, written = t1x_file
    spec = f"transition1x,split=test:{path}"
    picked = select([spec], tmp_path / "out", 2)
    names = {r.name for r in written["test"]}
    assert len(picked) == 2
    for atoms in picked:
        assert atoms.info["fntk_source_file"] == spec
        assert atoms.info["dataset"] == "transition1x" and atoms.info["split"] == "test"
        assert atoms.info["reaction"] in names
        formula, reaction, image = atoms.info["record"].split("/")
        assert (formula, reaction) == ("CH4O", atoms.info["reaction"])
        assert int(image) == atoms.info["image"] == atoms.info["fntk_source_index"]
    with open(tmp_path / "out" / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["source_file"] for r in rows} == {spec}


@pytest.mark.slow  # ~20 s on the shared CPU; the Transition1x run above covers the default suite
def test_select_on_a_compressed_oc20_shard_keeps_sid_fid_and_fixed_atoms(oc20_shard, tmp_path):
    path, _ = oc20_shard
    picked = select([str(path)], tmp_path / "out", 2)
    assert len(picked) == 2
    for atoms in picked:
        assert atoms.info["record"] == f"random{atoms.info['sid']},frame{atoms.info['fid']}"
        assert atoms.constraints, "FixAtoms must survive into selected.xyz (move_mask)"
        assert "free_energy" in atoms.calc.results


def test_predict_on_a_transition1x_split(t1x_file, tmp_path):
    path, _ = t1x_file
    out = tmp_path / "pred.xyz"
    result = runner.invoke(
        app, ["predict", f"transition1x,split=val:{path}", "-o", str(out), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    frames = ase.io.read(out, ":")
    assert [a.info["role"] for a in frames] == ["reactant", "transition_state", "product"]
    assert all(a.info["fntk_source_file"].startswith("transition1x,split=val:") for a in frames)
