"""Per-element energy shifts: exact least-squares recovery and the batched forward."""

from __future__ import annotations

import numpy as np
import torch

from fntk.learn import EnergyShift, fit_energy_shift


def test_fit_recovers_per_element_constants():
    rng = np.random.default_rng(0)
    species = [1, 6, 8, 29]
    true = {1: -0.3, 6: 1.7, 8: -2.1, 29: 0.45}
    numbers = [rng.choice(species, size=rng.integers(3, 9)) for _ in range(20)]
    residuals = np.array([sum(true[int(z)] for z in n) for n in numbers])
    shift = fit_energy_shift(numbers, residuals)
    for z, value in shift.as_dict().items():
        assert abs(value - true[z]) < 1e-10


def test_forward_sums_per_structure_and_ignores_unknown_elements():
    shift = EnergyShift([1, 8], [0.5, -2.0])
    numbers = torch.tensor([8, 1, 1, 29, 1])
    batch = torch.tensor([0, 0, 0, 1, 1])
    out = shift(numbers, batch, 2)
    assert torch.allclose(out, torch.tensor([-1.0, 0.5], dtype=torch.float64))


def test_of_structures_is_the_numpy_forward():
    shift = EnergyShift([1, 8], [0.5, -2.0])
    numbers = [np.array([8, 1, 1]), np.array([29, 1]), np.array([29])]
    np.testing.assert_allclose(shift.of_structures(numbers), [-1.0, 0.5, 0.0])
