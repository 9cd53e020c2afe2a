"""The linear-readout path is chosen by a declared backend capability, checked on the device."""

from __future__ import annotations

import pytest
import torch

from fntk.errors import CapabilityError
from fntk.features import build_feature_map, default_options
from fntk.features.readout import linear_readout
from fntk.models.base import LINEAR_READOUT, readout_linearity_error


def test_sevennet_declares_a_linear_readout_and_mace_does_not(sevennet64, mace64):
    assert LINEAR_READOUT in sevennet64.capabilities
    assert LINEAR_READOUT not in mace64.capabilities
    assert linear_readout(mace64, "readout") is None
    assert linear_readout(sevennet64, "last-interaction") is None
    with pytest.raises(CapabilityError, match="does not declare a linear readout"):
        mace64.readout_energy(torch.zeros(1, mace64.n_node_features, dtype=torch.float64))


def test_path_is_reported(sevennet64, mace64):
    joint = build_feature_map(default_options("joint", dim=12, basis="sketch", dtype="float64"))
    assert joint.path(sevennet64) == "hidden"
    assert joint.describe(sevennet64).startswith("joint features: hidden path (linear readout")
    assert "sketch basis, d=12" in joint.describe(sevennet64)
    exact = build_feature_map(default_options("force-ntk", dtype="float64"))
    assert "exact square-root basis, d=128" in exact.describe(sevennet64)
    assert joint.path(mace64) == "parameter"
    assert joint.describe(mace64).startswith("joint features: parameter path (group readout")
    other = build_feature_map(default_options("joint", group="last-interaction", dim=3))
    assert other.path(sevennet64) == "parameter"


@pytest.mark.parametrize(
    ("broken", "why"),
    [(lambda e: e + 0.05 * e**2, "nonlinear"), (lambda e: e + 1e-3, "bias")],
)
def test_a_declared_readout_that_is_not_linear_is_an_error(monkeypatch, sevennet64, broken, why):
    """Declaring the capability is a promise: no silent fallback to the generic path."""
    original = sevennet64.readout_energy
    monkeypatch.setattr(sevennet64, "readout_energy", lambda h: broken(original(h)))
    with pytest.raises(CapabilityError, match="declares a linear readout, but"):
        linear_readout(sevennet64, "readout")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linearity_probes_live_on_the_coefficients_device_and_dtype(dtype):
    coefficients = torch.linspace(-1.0, 1.0, 16, dtype=dtype)
    seen = []

    def readout(h: torch.Tensor) -> torch.Tensor:
        seen.append((h.device, h.dtype))
        return h @ coefficients

    assert readout_linearity_error(readout, coefficients) < 10 * torch.finfo(dtype).eps
    assert seen == [(coefficients.device, dtype)]
    assert readout_linearity_error(lambda h: readout(h) + 0.1, coefficients) > 1e-2
    assert readout_linearity_error(lambda h: readout(h) ** 2, coefficients) > 1e-2
