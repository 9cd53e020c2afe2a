"""SO3LR (real weights from the so3krates-torch wheel) against its own ASE calculator."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import molecule

from conftest import rattled
from fntk.errors import InputError
from fntk.features import build_feature_map, default_options
from fntk.models import PARAMETER_GROUPS, load_backend

pytest.importorskip("so3krates_torch")


@pytest.fixture(scope="module")
def so3lr32():
    """Real SO3LR in float32 (its calculator's dtype)."""
    return load_backend("so3lr", device="cpu")


@pytest.fixture(scope="module")
def so3lr64():
    return load_backend("so3lr", device="cpu", dtype=torch.float64)


@pytest.fixture(scope="module")
def calculator():
    from so3krates_torch.calculator.so3 import SO3LRCalculator

    default_dtype = torch.get_default_dtype()
    try:
        return SO3LRCalculator(device="cpu")  # float32, r_max_lr 12, damping 2
    finally:
        torch.set_default_dtype(default_dtype)  # the calculator sets it globally


def molecules():
    """Neutral molecules without charge info, a cation and a radical anion (charge, spin)."""
    frames = [rattled(molecule(name), seed) for seed, name in enumerate(["H2O", "CH3CH2OH"])]
    cation = rattled(molecule("CH3CONH2"), 3)
    cation.info.update(charge=1, total_spin=0.5)
    anion = rattled(molecule("CH3SCH3"), 4)  # S is an SO3LR element
    anion.info.update(charge=-1.0, total_spin=0.5)
    return [*frames, cation, anion]


def water_box():
    """Two waters in a periodic 6 A cell: long-range edges reach many images."""
    first, second = molecule("H2O"), molecule("H2O")
    second.translate([2.9, 0.3, 0.2])
    box = first + second
    box.set_cell([6.5, 6.0, 6.2])
    box.pbc = True
    return rattled(box, 1, 0.03)


def test_batched_energies_and_forces_equal_the_calculator(so3lr32, calculator):
    frames = [*molecules(), water_box()]
    for (energy, forces), atoms in zip(so3lr32.predict(frames, batch_size=4), frames):
        atoms = atoms.copy()
        atoms.calc = calculator
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(forces.numpy(), atoms.get_forces(), rtol=0, atol=1e-5)


def test_charge_and_spin_change_the_energy(so3lr64):
    neutral = rattled(molecule("CH3CONH2"), 3)
    charged = neutral.copy()
    charged.info.update(charge=1, total_spin=0.5)
    (e_neutral, _), (e_charged, _) = so3lr64.predict([neutral, charged])
    assert abs(e_neutral - e_charged) > 0.1


def test_long_range_terms_reach_beyond_the_short_range_cutoff(so3lr64):
    """Two waters 8 A apart (no short-range edge between them) still interact."""
    water = molecule("H2O")
    pair = water.copy()
    far = water.copy()
    far.translate([8.0, 0.0, 0.0])
    pair += far
    (e_pair, forces), (e_one, _) = so3lr64.predict([pair, water])
    assert abs(e_pair - 2 * e_one) > 1e-6
    assert float(forces[3:].sum(dim=0).norm()) > 1e-6  # net force on the far molecule


def test_batched_equals_one_by_one(so3lr64):
    frames = molecules()
    batched = so3lr64.predict(frames, batch_size=len(frames))
    for (e1, f1), atoms in zip(batched, frames):
        e2, f2 = so3lr64.predict([atoms])[0]
        assert e1 == pytest.approx(e2, abs=1e-9)
        torch.testing.assert_close(f1, f2, atol=1e-9, rtol=0)


def test_repeated_calls_are_bit_identical(so3lr32):
    frames = molecules()
    first, second = (so3lr32.predict(frames, batch_size=4) for _ in range(2))
    for (e1, f1), (e2, f2) in zip(first, second):
        assert e1 == e2
        assert torch.equal(f1, f2)


def test_forces_are_minus_the_energy_gradient(so3lr64):
    atoms = molecules()[1]
    _, forces = so3lr64.predict([atoms])[0]
    step = 1e-4
    for index, axis in [(0, 0), (4, 2)]:
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[index, axis] += sign * step
            shifted.append(so3lr64.predict([moved])[0][0])
        assert -(shifted[0] - shifted[1]) / (2 * step) == pytest.approx(
            float(forces[index, axis]), abs=1e-5
        )


def test_node_features_are_invariant(so3lr64):
    atoms = molecules()[1]
    turned = atoms.copy()
    turned.rotate(37, (1, 2, 3), center="COM")
    turned.translate([0.3, -1.0, 2.0])
    h1, h2 = (so3lr64(so3lr64.build_graph([a])).node_features for a in (atoms, turned))
    assert h1.shape == (len(atoms), so3lr64.n_node_features) == (len(atoms), 128)
    torch.testing.assert_close(h1, h2, atol=1e-8, rtol=0)


def test_parameter_groups_name_what_they_hold(so3lr64):
    groups = {g: set(so3lr64.parameter_group(g)) for g in PARAMETER_GROUPS}
    assert groups["readout"] < groups["last-interaction"] < groups["all"]
    heads = {name.split(".")[1] for name in groups["readout"]}
    assert heads == {
        "atomic_energy_output_block",
        "partial_charges_output_block",
        "hirshfeld_output_block",
    }
    layers = {name.split(".")[2] for name in groups["last-interaction"] - groups["readout"]}
    assert layers == {"2"}  # the last of SO3LR's three transformer layers
    assert sum(p.numel() for p in so3lr64.parameter_group("all").values()) == 529_852


def test_readout_is_not_linear_so_ntk_takes_the_parameter_path(so3lr64):
    fmap = build_feature_map(default_options("joint", dim=4, dtype="float64"))
    assert fmap.path(so3lr64) == "parameter"
    assert "linear_readout" not in so3lr64.capabilities


def test_parameter_path_equals_brute_force_autograd(so3lr64):
    """Joint rows = [dE/dtheta; dF/dtheta] Omega for the readout group (sketched, d = 3)."""
    atoms = molecules()[0]
    options = default_options("joint", dim=3, dtype="float64", per_atom=False, force_weight=1.0)
    fmap = build_feature_map(options)
    block = fmap(so3lr64, [atoms]).block(0)
    params = list(so3lr64.parameter_group("readout").values())
    graph = so3lr64.build_graph([atoms])
    energy, forces = so3lr64.energy_and_forces(graph, create_graph=True)
    rows = []
    for value in [energy[0], *forces.reshape(-1)]:
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params)
                ]
            )
        )
    jacobian = torch.stack(rows)  # (1 + 3N, P): dE/dtheta, then dF/dtheta atom-major
    expected = (jacobian @ fmap.projection(so3lr64)).detach().numpy()
    assert block.shape == (1 + 3 * len(atoms), 3)
    np.testing.assert_allclose(block, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())


def test_restore_pretrained_undoes_fine_tuning(so3lr64):
    before = {k: v.clone() for k, v in so3lr64.state_dict().items()}
    with torch.no_grad():
        for param in so3lr64.parameter_group("all").values():
            param.add_(0.01)
    so3lr64.restore_pretrained()
    for key, value in so3lr64.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_unknown_elements_are_refused_in_one_line(so3lr64):
    copper = molecule("H2O")
    copper.symbols[0] = "Cu"
    with pytest.raises(InputError, match=r"structure 1 .* holds Cu, which SO3LR does not") as info:
        so3lr64.build_graph([molecule("H2O"), copper])
    assert "\n" not in str(info.value)


def test_bad_charge_is_refused(so3lr64):
    atoms = molecule("H2O")
    atoms.info["charge"] = "plus one"
    with pytest.raises(InputError, match=r"info\['charge'\] = 'plus one', not a number"):
        so3lr64.build_graph([atoms])


def test_known_elements_are_the_trained_ones(so3lr64):
    """Elements whose learned energy scale moved from its initial 1 are exactly SO3LR's."""
    scales = so3lr64.model.atomic_energy_output_block.energy_scales.weight.detach()[0]
    trained = {z + 1 for z in range(scales.numel()) if float(scales[z]) != 1.0}
    assert trained == set(so3lr64.species)


def test_torch_defaults_are_untouched(so3lr32):
    from torch._tensor_str import PRINT_OPTS

    precision = PRINT_OPTS.precision
    so3lr32.predict(molecules()[:1])
    assert torch.get_default_dtype() == torch.float32
    assert PRINT_OPTS.precision == precision


def test_import_fntk_does_not_import_so3krates():
    """Neither ``import fntk`` nor listing the backends (``fntk models``) imports the extra."""
    code = (
        "import sys, fntk\n"
        "from fntk.models.base import available_backends\n"
        "assert 'so3lr' in available_backends()\n"
        "assert 'so3krates_torch' not in sys.modules, 'so3krates imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fntk_select_with_so3lr_records_model_and_weights(tmp_path, so3lr32):
    """``fntk select --model so3lr`` on molecules, offline; the store names model and weights."""
    import json

    from ase.io import write
    from typer.testing import CliRunner

    from fntk.cli.main import app
    from fntk.pipeline.featurize import weights_hash

    pool, train = tmp_path / "pool.xyz", tmp_path / "train.xyz"
    write(pool, [rattled(molecule(n), k) for k, n in enumerate(["CH4", "H2O", "HCN", "CH3OH"])])
    write(train, molecules()[:2])
    out, store = tmp_path / "picks", tmp_path / "store"
    args = ["select", str(pool), "--train", str(train), "-n", "2", "-o", str(out)]
    args += ["--model", "so3lr", "--features", "embedding", "--store", str(store), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((store / "meta.json").read_text())
    assert meta["model"] == "so3lr"
    assert meta["weights_hash"] == weights_hash(so3lr32)
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "so3lr" and run["n_picked"] == 2
