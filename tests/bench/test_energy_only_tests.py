"""``fntk bench`` with an energy-only test split in RGD1's layout: energy metrics, no forces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import molecule
from typer.testing import CliRunner

from fntk.bench import read_results
from fntk.cli.main import app

TINY_SIZES = {"init": 4, "pool": 10, "test_id": 3, "test_ood-ads": 0, "test_ood-cat": 0}
TINY_SIZES["test_ood-both"] = 0

h5py = pytest.importorskip("h5py")


def write_rgd1_molecules(path) -> None:
    """``RGD1_RPs.h5``: molX groups with elements, DFTG and DFT_SPE (Hartree), as released."""
    with h5py.File(path, "w") as handle:
        for k, name in enumerate(("CH3OH", "H2CO", "CH4")):
            mol = molecule(name)
            group = handle.create_group(f"mol{k}")
            group["elements"] = mol.numbers
            group["DFTG"] = mol.positions
            group["DFT_SPE"] = -0.1 * len(mol) - 0.01 * k  # made up: only needs to exist
            group["_id"] = name.encode()


def test_energy_only_split_has_energy_metrics_and_nan_force_metrics(tmp_path, caplog):
    from fntk.data import make_dataset

    data_dir = tmp_path / "data"
    make_dataset("emt-adsorbates", data_dir, sizes=TINY_SIZES, seed=0)
    rgd1 = tmp_path / "RGD1_RPs.h5"
    write_rgd1_molecules(rgd1)
    out = tmp_path / "results"
    args = ["bench", "--init", str(data_dir / "init.xyz"), "--pool", str(data_dir / "pool.xyz")]
    args += ["--test", f"test_id={data_dir / 'test_id.xyz'}"]
    args += ["--test", f"rgd1=rgd1-molecules:{rgd1}", "-o", str(out), "--quick", "--quiet"]
    args += ["--threads", "1", "--learner", "ridge", "--methods", "random"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_results(out / "results.csv")
    energy_only = [r for r in rows if r.split == "rgd1"]
    assert energy_only and all(math.isnan(r.force_rmse_mev_per_ang) for r in energy_only)
    assert all(np.isfinite(r.energy_rmse_mev_per_atom) for r in energy_only)
    assert all(r.force_rmse_mev_per_ang > 0 for r in rows if r.split != "rgd1")
    assert "no reference forces" in caplog.text
    summary = (out / "summary.md").read_text()
    rgd1_section = summary.split("## rgd1")[1]
    assert (
        "force metrics omitted" in rgd1_section
        and "force metrics omitted" not in (summary.split("## rgd1")[0])
    )


def test_init_and_pool_still_need_forces(tmp_path):
    from fntk.bench.loop import load_bench_data
    from fntk.errors import InputError

    rgd1 = tmp_path / "RGD1_RPs.h5"
    write_rgd1_molecules(rgd1)
    spec = f"rgd1-molecules:{rgd1}"
    with pytest.raises(InputError, match="no reference forces"):
        load_bench_data([spec], [spec], {"t": [spec]})
