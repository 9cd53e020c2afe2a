"""Fine-tuning rounds on SevenNet-0 and a small MACE model with EMT-labelled adsorbates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pydantic import ValidationError

from fntk.data import make_adsorbate_structures
from fntk.errors import InputError
from fntk.learn import FinetuneOptions, LabelledSet, evaluate, finetune

FAST = {"validation_fraction": 0.0, "schedule": "constant", "batch_size": 4}


def adsorbates(n: int, seed: int, **kwargs) -> LabelledSet:
    return LabelledSet.from_structures(make_adsorbate_structures(n, seed=seed, **kwargs))


def cu_adsorbates(n: int, seed: int) -> LabelledSet:
    """Cu slabs only: the small MACE model knows H, C, N, O and Cu."""
    return adsorbates(n, seed, metals=("Cu",))


def state(backend) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in backend.state_dict().items()}


def test_readout_finetune_lowers_train_force_rmse(sevennet):
    labelled = adsorbates(4, seed=1)
    before = evaluate(sevennet, labelled)
    options = FinetuneOptions(n_steps=4, learning_rate=1e-2, **FAST)
    result = finetune(sevennet, labelled, options)
    after = evaluate(sevennet, labelled, energy_shift=result.energy_shift)
    assert after.force_rmse_mev_per_ang < 0.95 * before.force_rmse_mev_per_ang
    assert after.energy_mae_mev_per_atom < 0.1 * before.energy_mae_mev_per_atom
    assert result.n_steps_run == 4 and result.seconds_per_step > 0
    assert [r.step for r in result.curve] == [0, 4]


def test_min_epochs_raises_the_steps_with_the_labelled_set(sevennet):
    """``min_epochs`` passes over the training structures at least: 6 structures in batches
    of 4 for 2 epochs are 3 steps although ``n_steps`` is 1 (a bench round with more labels
    trains longer); ``n_steps = 0`` stays no step at all."""
    options = FinetuneOptions(n_steps=1, min_epochs=2.0, learning_rate=1e-2, **FAST)
    assert [options.steps_for(n) for n in (0, 2, 6, 40)] == [1, 1, 3, 20]
    assert options.model_copy(update={"n_steps": 0}).steps_for(40) == 0
    result = finetune(sevennet, adsorbates(6, seed=4), options)
    assert result.n_steps_run == 3
    assert [r.step for r in result.curve] == [0, 3]


def test_e0_refit_recovers_an_energy_shift_without_gradient_steps(sevennet):
    structures = make_adsorbate_structures(12, seed=3, adsorbates=("H", "O", "OH", "CO"))
    predicted = sevennet.predict(structures)
    true_shift = {1: 0.25, 6: -1.5, 8: 0.75, 28: -0.125, 29: 0.5, 78: 2.0}
    for atoms, (energy, forces) in zip(structures, predicted):
        shifted = energy + sum(true_shift[int(z)] for z in atoms.numbers)
        atoms.calc = SinglePointCalculator(atoms, energy=shifted, forces=forces.numpy())
    labelled = LabelledSet.from_structures(structures)
    result = finetune(sevennet, labelled, FinetuneOptions(n_steps=0, validation_fraction=0))
    fitted = result.energy_shift.as_dict()
    assert set(fitted) == set(true_shift)
    for z, value in true_shift.items():
        assert fitted[z] == pytest.approx(value, abs=1e-4)
    metrics = evaluate(sevennet, labelled, energy_shift=result.energy_shift)
    assert metrics.energy_mae_mev_per_atom < 0.01
    assert result.n_steps_run == 0


def test_only_the_chosen_group_changes(sevennet):
    pretrained = state(sevennet)
    readout = set(sevennet.parameter_group("readout"))
    flags = {n: p.requires_grad for n, p in sevennet.named_parameters()}
    finetune(sevennet, adsorbates(4, seed=2), FinetuneOptions(n_steps=2, **FAST))
    after = dict(sevennet.named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), pretrained[n])}
    assert changed == readout
    assert {n: p.requires_grad for n, p in sevennet.named_parameters()} == flags


def test_same_seed_gives_bit_identical_weights_and_rounds_restart_from_pretrained(mace):
    labelled = cu_adsorbates(6, seed=4)
    pretrained = state(mace)
    options = FinetuneOptions(scope="all", n_steps=3, batch_size=2, validation_fraction=0)
    first = finetune(mace, labelled, options, seed=7)
    weights = state(mace)
    second = finetune(mace, labelled, options, seed=7)
    assert all(torch.equal(weights[k], v) for k, v in state(mace).items())
    assert first.curve == second.curve
    third = finetune(mace, labelled, options, seed=8)
    assert third.curve != first.curve
    assert not all(torch.equal(weights[k], v) for k, v in pretrained.items())
    mace.restore_pretrained()
    assert all(torch.equal(pretrained[k], v) for k, v in state(mace).items())


def test_mace_last_interaction_scope_learns_and_freezes_the_rest(mace):
    labelled = cu_adsorbates(6, seed=5)
    pretrained = state(mace)
    group = set(mace.parameter_group("last-interaction"))
    before = evaluate(mace, labelled)
    options = FinetuneOptions(scope="last-interaction", n_steps=10, learning_rate=0.1, **FAST)
    result = finetune(mace, labelled, options)
    after = evaluate(mace, labelled, energy_shift=result.energy_shift)
    assert after.force_rmse_mev_per_ang < 0.8 * before.force_rmse_mev_per_ang
    for name, param in mace.named_parameters():
        assert torch.equal(param.detach(), pretrained[name]) == (name not in group), name


def test_early_stopping_keeps_the_best_weights(mace):
    labelled = cu_adsorbates(8, seed=6)
    pretrained = state(mace)
    options = FinetuneOptions(
        scope="readout",
        n_steps=20,
        learning_rate=5.0,
        batch_size=2,
        validation_fraction=0.25,
        eval_every=1,
        patience=2,
        schedule="constant",
    )
    result = finetune(mace, labelled, options)
    losses = [r.validation_loss for r in result.curve]
    assert result.stopped_early and result.n_steps_run < 20
    assert result.best_step == result.curve[int(np.argmin(losses))].step
    if result.best_step == 0:
        assert all(torch.equal(v, pretrained[k]) for k, v in state(mace).items())
    assert len(result.validation_indices) == 2 and len(result.train_indices) == 6


def test_trainable_e0_moves_with_the_gradient(mace):
    labelled = cu_adsorbates(4, seed=9)
    options = FinetuneOptions(n_steps=2, train_e0=True, loss="huber", learning_rate=1e-2, **FAST)
    fitted = finetune(mace, labelled, options.model_copy(update={"n_steps": 0}))
    trained = finetune(mace, labelled, options)
    assert fitted.energy_shift.as_dict() != trained.energy_shift.as_dict()


def test_clear_errors(mace, tmp_path):
    with pytest.raises(InputError, match="empty"):
        LabelledSet.from_structures([])
    structures = make_adsorbate_structures(3, seed=0, metals=("Cu",))
    structures[1].calc = None
    with pytest.raises(InputError, match=r"frame 1: no reference energy"):
        LabelledSet.from_structures(structures, source="train.xyz")
    gold = adsorbates(2, seed=0, metals=("Au",))
    with pytest.raises(InputError, match=r"frame 0: elements \[79\] are unknown"):
        finetune(mace, gold)
    with pytest.raises(ValidationError):
        FinetuneOptions(scopee="all")


def test_e0_reference_atoms_give_shifts_to_elements_missing_from_the_labels(mace):
    structures = make_adsorbate_structures(4, seed=2, metals=("Cu",), adsorbates=("H", "O"))
    isolated = [Atoms(symbol) for symbol in ("C", "N", "Cu")]
    true_shift = {1: 0.5, 6: -1.25, 7: 2.0, 8: 0.25, 29: -0.75}
    for atoms, (energy, forces) in zip(isolated, mace.predict(isolated)):
        shifted = energy + true_shift[int(atoms.numbers[0])]
        atoms.calc = SinglePointCalculator(atoms, energy=shifted, forces=forces.numpy())
    options = FinetuneOptions(n_steps=0, validation_fraction=0)
    labelled = LabelledSet.from_structures(structures)
    reference = LabelledSet.from_structures(isolated)
    without = finetune(mace, labelled, options).energy_shift.as_dict()
    assert set(without) == {1, 8, 29}
    fitted = finetune(mace, labelled, options, e0_reference=reference).energy_shift.as_dict()
    assert fitted[6] == pytest.approx(true_shift[6], abs=1e-8)
    assert fitted[7] == pytest.approx(true_shift[7], abs=1e-8)
