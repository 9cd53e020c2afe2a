"""The seeded sketch: generated from the seed alone, N(0, 1/d) entries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fntk.features import sketch_column, sketch_matrix


def test_columns_depend_only_on_seed_and_index():
    a = sketch_column(7, 3, 1000, 16)
    b = sketch_matrix(7, 1000, 16)[:, 3]
    assert torch.equal(a, b)
    assert torch.equal(a, sketch_column(7, 3, 1000, 16))
    assert not torch.equal(a, sketch_column(8, 3, 1000, 16))
    assert not torch.equal(a, sketch_column(7, 4, 1000, 16))


def test_float32_is_the_cast_of_float64():
    assert torch.equal(
        sketch_column(1, 0, 100, 4, dtype=torch.float32),
        sketch_column(1, 0, 100, 4).to(torch.float32),
    )


def test_entries_have_variance_one_over_d():
    omega = sketch_matrix(0, 20000, 8).numpy()
    assert np.var(omega) * 8 == pytest.approx(1.0, rel=0.02)
    assert abs(np.mean(omega)) < 0.01


def test_column_outside_width_is_refused():
    with pytest.raises(ValueError, match="outside a sketch of width 4"):
        sketch_column(0, 4, 10, 4)
