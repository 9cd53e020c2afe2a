"""RidgeLearner with real SevenNet-0: features from designs, disk cache, evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import made_up_molecules as labelled
from fntk.bench.learner import RidgeLearner, _basis_fingerprint
from fntk.features import compute_features, default_options
from fntk.learn import FinetuneOptions, evaluate_splits


@pytest.fixture(scope="module")
def backend():
    from fntk.models import load_backend

    return load_backend("sevennet-0", device="cpu", dtype=torch.float32)


@pytest.mark.parametrize("basis", ["sketch", "pca"])
def test_features_from_designs_equal_the_feature_map(backend, basis, tmp_path):
    """Rows the designs hold (the same width, seed and hidden basis) come from them and equal
    the map's; a PCA basis fitted for other rows or another lambda is not theirs."""
    learner = RidgeLearner(backend, FinetuneOptions(), 5, cache_dir=tmp_path)
    learner.design_options = learner.design_options.model_copy(update={"basis": basis})
    learner._basis = _basis_fingerprint(backend, learner.design_options)
    structures = labelled(["H2O", "CH4", "HCOOH"], 0).structures
    index = np.array([7, 3, 9])
    same = {"dim": 5, "basis": basis, "force_weight": 1.0, "per_atom": False}
    for options in (
        default_options("joint", **same),
        default_options("force-ntk", dim=5, basis=basis),
    ):
        if basis == "pca" and options.name == "force-ntk":
            assert learner.feature_chunk(options, structures, index) is None  # other Gram
            continue
        derived, seconds = learner.feature_chunk(options, structures, index)
        direct = compute_features(backend, structures, options, index)
        assert seconds > 0
        np.testing.assert_array_equal(derived.offsets, direct.offsets)
        np.testing.assert_array_equal(derived.row_kind, direct.row_kind)
        np.testing.assert_array_equal(derived.source_index, index)
        np.testing.assert_allclose(derived.values, direct.values, rtol=1e-5, atol=1e-6)
    if basis == "pca":  # lambda weighs the force rows of the reference Gram: another basis
        other = default_options("joint", **{**same, "force_weight": 0.7})
        assert learner.feature_chunk(other, structures, index) is None
    # Other widths, seeds or groups are not in the designs.
    assert learner.feature_chunk(default_options("joint", dim=6), structures, index) is None
    assert learner.feature_chunk(default_options("energy-ntk"), structures, index) is None


def test_designs_are_cached_on_disk(backend, tmp_path):
    data = labelled(["H2O", "NH3"], 1)
    first = RidgeLearner(backend, FinetuneOptions(), 4, cache_dir=tmp_path)
    designs = first.designs(data.structures)
    parts = sorted(tmp_path.rglob("part-*.npz"))
    assert len(parts) == 1
    second = RidgeLearner(backend, FinetuneOptions(), 4, cache_dir=tmp_path)
    again = second.designs(data.structures)
    assert sorted(tmp_path.rglob("part-*.npz")) == parts  # nothing recomputed
    for a, b in zip(designs, again):
        np.testing.assert_array_equal(a.force_rows, b.force_rows)
        assert a.energy == b.energy
    assert second.design_seconds(data.structures) == first.design_seconds(data.structures)
    # Another width lives in another folder.
    RidgeLearner(backend, FinetuneOptions(), 3, cache_dir=tmp_path).designs(data.structures[:1])
    assert len(list(tmp_path.glob("designs-*"))) == 2


def test_fit_and_evaluate_match_the_backend_with_fitted_weights(backend):
    train = labelled(["H2O", "CH4", "NH3", "CH3OH", "HCOOH", "H2CO"], 2)
    test = labelled(["C2H6", "CH3CHO"], 3)
    learner = RidgeLearner(backend, FinetuneOptions(validation_fraction=0.2), 8)
    model = learner.fit(train, seed=1)
    assert model.n_steps_run == 0 and model.coefficients.shape == (8,)
    assert learner.fit(train, seed=1).coefficients.tolist() == model.coefficients.tolist()
    metrics = learner.evaluate(model, {"test": test})["test"]
    params = backend.parameter_group("readout")
    with torch.no_grad():
        for name, value in learner.weights(model).items():
            params[name].copy_(value)
    try:
        reference = evaluate_splits(backend, {"test": test}, energy_shift=model.energy_shift)
    finally:
        backend.restore_pretrained()
    ref = reference["test"]
    assert metrics.force_rmse_mev_per_ang == pytest.approx(ref.force_rmse_mev_per_ang, rel=1e-4)
    assert metrics.energy_mae_mev_per_atom == pytest.approx(ref.energy_mae_mev_per_atom, rel=1e-4)
    forces = learner.predict_forces(model, test.structures)
    assert [f.shape for f in forces] == [(len(a), 3) for a in test.structures]


def test_committee_members_are_fitted_on_seeded_subsamples(backend):
    train = labelled(
        ["H2O", "CH4", "NH3", "CH3OH", "HCOOH", "H2CO", "C2H6", "HCN", "N2H4", "CO2"], 4
    )
    learner = RidgeLearner(backend, FinetuneOptions(validation_fraction=0.0), 6)
    full = learner.fit(train, seed=0).coefficients
    members = [learner.fit_member(train, seed=s).coefficients for s in (1, 2)]
    assert not np.allclose(members[0], full) and not np.allclose(members[0], members[1])
    np.testing.assert_array_equal(learner.fit_member(train, seed=1).coefficients, members[0])


def test_committee_pays_for_the_pool_designs_it_predicts_from(backend):
    from fntk.bench import BenchOptions, build_method
    from fntk.bench.methods import BenchPool

    pool = labelled(["H2O", "CH4", "NH3", "HCN"], 5).structures
    view = BenchPool(init=[], pool=pool, candidates=np.array([0, 2, 3]))
    learner = RidgeLearner(backend, FinetuneOptions(), 4)
    seconds = build_method("committee", BenchOptions()).prepare(view, learner, None)
    candidates = [pool[i] for i in (0, 2, 3)]
    assert seconds > 0
    assert seconds == learner.design_seconds(candidates)
    assert learner.prepare_candidates(candidates) == seconds  # cached: the original cost
