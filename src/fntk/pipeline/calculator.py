"""An ASE calculator with calibrated force uncertainties (``fntk.Calculator``).

Energy and forces come from the model; the uncertainties from the error model of
:mod:`fntk.pipeline.uncertainty` restricted to its ``rank`` directions of largest posterior
variance (:func:`fntk.select.errorbars.posterior_directions`). For a linear readout (SevenNet)
those directions live in the readout's hidden space, so one call is a forward pass, the
energy+force backward pass and ``rank`` more backward passes of ``u_k . s(x)``: a few
energy+force evaluations (``benchmarks/calculator_cost.py`` measures the ratio), cheap enough
to drive MD and keep the frames whose uncertainty passes a threshold. Other backends compute
their full joint features per call (``dim`` backward passes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator as AseCalculator
from ase.calculators.calculator import all_changes

from fntk.features import compute_features
from fntk.features.ntk import hidden_basis
from fntk.features.readout import linear_readout
from fntk.learn import LabelledSet
from fntk.models import ModelBackend, load_backend
from fntk.pipeline.uncertainty import fit_error_model, joint_options
from fntk.select.errorbars import RowVariances, estimates

DEFAULT_RANK = 8
"""Posterior directions the calculator evaluates (``benchmarks/uncertainty.py`` scores it as
``posterior-r8`` against the full posterior and a committee)."""


class Calculator(AseCalculator):
    """ASE calculator: model energy and forces plus calibrated error estimates.

    ``results`` holds ``energy`` and ``free_energy`` (eV), ``forces`` (eV/Angstrom),
    ``force_uncertainty`` (predicted force RMSE of the structure, eV/Angstrom),
    ``atom_force_uncertainty`` (per atom, eV/Angstrom) and ``energy_uncertainty`` (eV/atom).

    Parameters
    ----------
    model : str or ModelBackend
        Model spec (``sevennet-0``, ``sevennet:PATH``, ``mace:PATH``) or a loaded backend.
    train : sequence of Atoms
        Structures the model was trained (fine-tuned) on; labels not needed.
    calibrate : sequence of Atoms, optional
        Labelled structures (energy and forces, e.g. from a calculator) the model was not
        trained on; without them the uncertainties are uncalibrated (prior units).
    rank : int
        Posterior directions evaluated per call (see the module docstring).
    dim : int, optional
        Joint feature width d (default: the joint map's).
    device, dtype : str
    """

    implemented_properties = [  # noqa: RUF012 (ASE declares it an instance attribute)
        "energy",
        "free_energy",
        "forces",
        "force_uncertainty",
        "atom_force_uncertainty",
        "energy_uncertainty",
    ]

    def __init__(
        self,
        model: str | ModelBackend = "sevennet-0",
        train: Sequence[Atoms] = (),
        calibrate: Sequence[Atoms] | None = None,
        *,
        rank: int = DEFAULT_RANK,
        dim: int | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not len(train):
            raise ValueError("Calculator needs the training structures (train=...)")
        self.backend = (
            model
            if isinstance(model, ModelBackend)
            else load_backend(model, device=device, dtype=getattr(torch, dtype))
        )
        dtype = str(self.backend.dtype).removeprefix("torch.")
        self.options = joint_options(
            list(train), **({"dim": dim} if dim else {}), dtype=dtype, device=device
        )
        labelled = None if calibrate is None else LabelledSet.from_structures(list(calibrate))
        self.error_model, self.calibration_record = fit_error_model(
            self.backend, self.options, list(train), labelled, rank=rank
        )
        self._hidden = self._hidden_directions()

    @property
    def calibrated(self) -> bool:
        return self.error_model.force_calibration_.fitted

    def _hidden_directions(self) -> torch.Tensor | None:
        """Hidden-space directions ``B W`` (F x rank) of a linear readout, else ``None``."""
        readout = linear_readout(self.backend, self.options.group)
        directions = self.error_model.directions()
        if readout is None or directions is None:
            return None
        self._readout = readout
        basis = hidden_basis(readout, self.options, self.backend)
        return basis @ torch.as_tensor(directions, dtype=basis.dtype, device=basis.device)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        structure = self.atoms
        if self._hidden is not None:
            energy, forces, variances = self._fast(structure)
        else:
            energy, force_tensor = self.backend.predict([structure])[0]
            forces = force_tensor.numpy()
            variances = self.error_model.variances(
                compute_features(self.backend, [structure], self.options)
            )
        estimate = estimates(
            variances,
            self.error_model.force_calibration_,
            self.error_model.energy_calibration_,
        )
        self.results = {
            "energy": float(energy),
            "free_energy": float(energy),
            "forces": np.asarray(forces, dtype=np.float64),
            "force_uncertainty": float(estimate.force_sigma[0]),
            "atom_force_uncertainty": estimate.atom_force_sigma[0],
            "energy_uncertainty": float(estimate.energy_sigma[0]),
        }

    def _fast(self, atoms: Atoms) -> tuple[float, np.ndarray, RowVariances]:
        """Energy, forces and low-rank row variances from one forward pass (linear readout)."""
        assert self._hidden is not None
        graph = self.backend.build_graph([atoms])
        positions = graph.positions.detach().requires_grad_(True)
        n = len(atoms)
        with torch.enable_grad():
            output = self.backend(graph, positions)
            weights = self._readout.atom_weights(graph)
            projected = (output.node_features * weights[:, None]) @ self._hidden  # (n, rank)
            rank = projected.shape[1]
            (grad,) = torch.autograd.grad(output.energy.sum(), positions, retain_graph=rank > 0)
            gradients = []
            for k in range(rank):
                (g,) = torch.autograd.grad(
                    projected[:, k].sum(), positions, retain_graph=k < rank - 1
                )
                gradients.append(g.reshape(-1))
        force_variance = (
            torch.stack(gradients, dim=1).pow(2).sum(dim=1)
            if gradients
            else torch.zeros(3 * n, dtype=positions.dtype)
        )
        energy_row = projected.detach().sum(dim=0) / (n if self.options.per_atom else 1)
        variances = RowVariances(
            energy=np.array([float(energy_row.pow(2).sum())]),
            force=force_variance.detach().cpu().double().numpy(),
            force_offsets=np.array([0, 3 * n], dtype=np.int64),
            source_index=np.zeros(1, dtype=np.int64),
        )
        forces = (-grad).detach().cpu().double().numpy()
        return float(output.energy.detach().sum()), forces, variances
