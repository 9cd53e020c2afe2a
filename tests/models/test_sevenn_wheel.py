"""Every model the sevenn wheel carries, by name, against sevenn's own ASE calculator."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from conftest import rattled
from fntk.models import available_backends, load_backend
from fntk.models._compat import import_e3nn
from fntk.models.sevennet import WHEEL_MODELS

# Each loads two models and compiles sevenn's TorchScript: ~12 CPU s, so marked slow.
CASES = [
    pytest.param(spec, marks=pytest.mark.slow)
    for spec in WHEEL_MODELS
    if spec != "sevennet-0"  # checked against its calculator in test_backends.py
]


def test_every_wheel_model_is_listed():
    import_e3nn()  # before sevenn: e3nn's own constants need an allow-listed torch.load
    from sevenn.util import pretrained_name_to_path

    assert set(WHEEL_MODELS) <= set(available_backends())
    for sevenn_name, _ in WHEEL_MODELS.values():
        assert pretrained_name_to_path(sevenn_name)  # names sevenn itself resolves


@pytest.mark.parametrize("spec", CASES)
def test_wheel_model_matches_its_calculator(spec):
    backend = load_backend(spec, device="cpu")  # float32, as the calculator runs it
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(WHEEL_MODELS[spec][0], device="cpu")
    frames = [rattled(molecule("CH3CH2OH"), 1), rattled(bulk("NaCl", "rocksalt", a=5.6), 2)]
    for (energy, forces), atoms in zip(backend.predict(frames), frames):
        atoms = atoms.copy()
        atoms.calc = calc
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(forces.numpy(), atoms.get_forces(), rtol=0, atol=1e-5)
    assert backend.spec == spec
