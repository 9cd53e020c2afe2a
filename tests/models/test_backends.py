"""Model backends against their own ASE calculators, finite differences and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from conftest import rattled
from fntk.errors import CapabilityError, ModelLoadError
from fntk.models import PARAMETER_GROUPS, available_backends, load_backend


@pytest.fixture(params=["sevennet", "mace"])
def backend(request, sevennet64, mace64):
    return {"sevennet": sevennet64, "mace": mace64}[request.param]


@pytest.fixture
def mixed(small_structures):
    """Molecules and a periodic slab, plus a small bulk cell (periodic in all directions)."""
    return [*small_structures, rattled(bulk("Cu", "fcc", a=3.6, cubic=True), 4)]


def test_sevennet_matches_its_ase_calculator(sevennet64, mixed):
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator("7net-0", device="cpu")  # float32 inside
    for (energy, forces), atoms in zip(sevennet64.predict(mixed), mixed):
        atoms = atoms.copy()
        atoms.calc = calc
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(forces.numpy(), atoms.get_forces(), atol=1e-5)


def test_mace_matches_its_ase_calculator(mace64, mace_model_file, small_structures):
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=mace_model_file, device="cpu", default_dtype="float64")
    for (energy, forces), atoms in zip(mace64.predict(small_structures), small_structures):
        atoms = atoms.copy()
        atoms.calc = calc
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
        np.testing.assert_allclose(forces.numpy(), atoms.get_forces(), atol=1e-5)


def test_batched_equals_one_by_one(backend, mixed):
    if backend.spec.startswith("mace"):
        mixed = mixed[:3]  # the small MACE knows H, C, N, O, Cu only; Cu bulk is fine too
    batched = backend.predict(mixed, batch_size=len(mixed))
    single = [backend.predict([a])[0] for a in mixed]
    for (e1, f1), (e2, f2) in zip(batched, single):
        assert e1 == pytest.approx(e2, abs=1e-10)
        torch.testing.assert_close(f1, f2, atol=1e-10, rtol=0)


def test_forces_are_minus_energy_gradient_by_finite_differences(backend, small_structures):
    atoms = small_structures[1]
    _, forces = backend.predict([atoms])[0]
    h = 1e-4
    for atom, axis in [(0, 0), (3, 1), (8, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        (e_plus, _), (e_minus, _) = backend.predict([plus, minus])
        assert -(e_plus - e_minus) / (2 * h) == pytest.approx(float(forces[atom, axis]), abs=1e-6)


def test_double_backward_through_forces(backend, small_structures):
    """d(sum F^2)/dtheta exists and matches a finite difference in one readout weight."""
    graph = backend.build_graph(small_structures[:2])
    readout = backend.parameter_group("readout")
    name, weight = next(iter(readout.items()))
    _, forces = backend.energy_and_forces(graph, create_graph=True)
    (grad,) = torch.autograd.grad((forces**2).sum(), weight)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0

    h = 1e-6
    index = tuple(int(i) for i in torch.nonzero(grad.abs() == grad.abs().max())[0])
    original = weight.detach().clone()
    values = []
    with torch.no_grad():
        for sign in (1, -1):
            weight.copy_(original)
            weight[index] += sign * h
            values.append(float((backend.energy_and_forces(graph)[1] ** 2).sum()))
        weight.copy_(original)
    assert (values[0] - values[1]) / (2 * h) == pytest.approx(float(grad[index]), rel=1e-4), name


def test_node_features_are_invariant_per_atom(backend, small_structures):
    atoms = small_structures[1]
    out = backend(backend.build_graph([atoms]))
    assert out.node_features.shape == (len(atoms), backend.n_node_features)
    moved = atoms.copy()
    moved.rotate(37, "x", center="COM")
    moved.rotate(-80, "z")
    moved.translate([1.0, -2.0, 0.5])
    moved_out = backend(backend.build_graph([moved]))
    torch.testing.assert_close(moved_out.node_features, out.node_features, atol=1e-8, rtol=1e-7)
    assert float(moved_out.energy) == pytest.approx(float(out.energy), abs=1e-8)


def test_parameter_groups_are_nested(backend):
    sizes = {}
    groups = {g: backend.parameter_group(g) for g in PARAMETER_GROUPS}
    for g, params in groups.items():
        sizes[g] = sum(p.numel() for p in params.values())
    assert 0 < sizes["readout"] < sizes["last-interaction"] < sizes["all"]
    assert set(groups["readout"]) <= set(groups["last-interaction"]) <= set(groups["all"])
    with pytest.raises(CapabilityError, match="unknown parameter group 'heads'"):
        backend.parameter_group("heads")


def test_sevennet_readout_group_is_the_linear_readout(sevennet64):
    shapes = {n: tuple(p.shape) for n, p in sevennet64.parameter_group("readout").items()}
    assert sum(np.prod(s) for s in shapes.values()) == 128 * 64 + 64


def test_restore_pretrained_undoes_fine_tuning(backend, small_structures):
    reference = backend.predict(small_structures[:1])[0][0]
    with torch.no_grad():
        for p in backend.parameter_group("readout").values():
            p.add_(0.1)
    assert backend.predict(small_structures[:1])[0][0] != pytest.approx(reference)
    backend.restore_pretrained()
    assert backend.predict(small_structures[:1])[0][0] == pytest.approx(reference, abs=1e-12)


def test_float32_backend_matches_float64(sevennet64, small_structures):
    b32 = load_backend("sevennet-0", device="cpu")
    assert b32.dtype == torch.float32
    for (e32, f32), (e64, f64) in zip(
        b32.predict(small_structures), sevennet64.predict(small_structures)
    ):
        assert e32 == pytest.approx(e64, abs=1e-3)
        torch.testing.assert_close(f32.double(), f64, atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("schnet", r"unknown model spec 'schnet'"),
        ("mace", r"model spec 'mace' names no file; write mace:PATH"),
        ("mace:/no/such/model.model", r"model file not found: /no/such/model\.model \(from"),
        ("sevennet:/no/such.pth", r"model file not found: /no/such\.pth \(from --model"),
        ("sevennet-0:extra", r"takes no argument"),
        ("mace-mp:huge", r"size must be small or medium"),
    ],
)
def test_bad_specs_raise_clear_errors(spec, pattern):
    with pytest.raises(ModelLoadError, match=pattern):
        load_backend(spec, device="cpu")


def test_available_backends_are_the_prefixes_an_unknown_spec_lists():
    names = available_backends()
    assert names == sorted(names) and {"sevennet-0", "sevennet", "mace"} <= set(names)
    with pytest.raises(ModelLoadError) as caught:
        load_backend("schnet", device="cpu")
    listed = str(caught.value).split("valid forms: ")[1]
    assert all(name in listed for name in names)


def test_non_model_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match=r"does not hold a MACE model object"):
        load_backend(f"mace:{path}", device="cpu")


def test_mace_mp_offline_asks_for_a_file_path(monkeypatch):
    # A unit test may not depend on the network either way, so the downloader is replaced by one
    # that fails the way urllib does without a connection.
    import urllib.error

    import mace.calculators.foundations_models as foundations

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(foundations, "download_mace_mp_checkpoint", offline)
    with pytest.raises(ModelLoadError, match=r"could not download mace-mp:small .*--model mace:"):
        load_backend("mace-mp:small", device="cpu")


def test_cuda_request_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelLoadError, match="no CUDA GPU is visible"):
        load_backend("sevennet-0", device="cuda")


def test_mixed_sizes_in_one_batch(sevennet64):
    structures = [molecule("H2"), rattled(bulk("Cu", "fcc", a=3.6).repeat((3, 3, 3)), 5)]
    (e_small, f_small), (e_big, f_big) = sevennet64.predict(structures)
    assert f_small.shape == (2, 3) and f_big.shape == (27, 3)
    assert np.isfinite(e_small) and np.isfinite(e_big)


def test_repeated_calls_are_bit_identical(small_structures):
    backend = load_backend("sevennet-0", device="cpu")  # float32, where rounding shows
    graph = backend.build_graph(small_structures)
    first = backend.energy_and_forces(graph)
    for _ in range(4):  # TorchScript would re-optimise here and change the rounding
        again = backend.energy_and_forces(graph)
        assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])
