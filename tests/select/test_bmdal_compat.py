"""LCMD on one-row features reproduces bmdal_reg's ``select_batch`` picks.

bmdal_reg's ``('train', [s, None])`` transform scales the linear kernel so that the training
kernel diagonal has mean 1 and then conditions on the training set with noise ``s``. That is
fntk's posterior linear kernel with ``relative_noise = s**2`` up to one overall factor, which
does not change LCMD's picks. bmdal_reg runs in float64 here (``allow_float64=True``) so that
both sides compare the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from fntk.select import Selector

torch = pytest.importorskip("torch")
algorithms = pytest.importorskip("bmdal_reg.bmdal.algorithms")
feature_data = pytest.importorskip("bmdal_reg.bmdal.feature_data")


@pytest.fixture(autouse=True)
def _numpy_inf_alias(monkeypatch):
    """bmdal_reg 3.0.2 uses ``np.Inf``, which NumPy 2 removed; restored after each test."""
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)


@pytest.mark.parametrize(("method", "bmdal_method"), [("lcmd", "lcmd"), ("maxdist", "maxdist")])
@pytest.mark.parametrize("noise", [0.1, 1e-3])
def test_picks_equal_bmdal_select_batch_on_one_row_features(
    make_chunk, method, bmdal_method, noise
):
    train = make_chunk(21, 40, 16, one_row=True)
    pool = make_chunk(22, 250, 16, one_row=True)
    data = {
        "train": feature_data.TensorFeatureData(torch.as_tensor(train.values)),
        "pool": feature_data.TensorFeatureData(torch.as_tensor(pool.values)),
    }
    bmdal_picks, info = algorithms.select_batch(
        batch_size=25,
        models=[torch.nn.Identity()],  # only counted: the linear kernel uses no model
        data=data,
        y_train=None,
        base_kernel="linear",
        kernel_transforms=[("train", [noise, None])],
        selection_method=bmdal_method,
        allow_float64=True,
        verbosity=0,
    )
    assert info["selection_status"] is None
    ours = Selector(method, relative_noise=noise**2, shortlist_size=pool.n_structures)
    result = ours.fit(train.split(16)).select(pool.split(32), 25)
    assert result.kernel == "linear" and result.mode == "tp"
    assert list(result.indices) == bmdal_picks.tolist()
