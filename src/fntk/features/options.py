"""Options of the feature maps: one validated, JSON-serialisable pydantic model per map.

Every feature map is configured by exactly one of these objects, and the feature store keeps the
object beside the features it produced, so that features made with other settings are refused
(``fntk.features.store``). Defaults and units are documented here and nowhere else. The maps and
their mathematics are described in DESIGN.md section 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from fntk.options import ComputeDtype, ParameterGroup

HiddenBasis = Literal["sketch", "pca"]
ReferenceSet = Literal["builtin-v1", "builtin-v2"]
DEFAULT_JOINT_MAP: tuple[HiddenBasis, int, ReferenceSet] = ("pca", 16, "builtin-v2")
"""(basis, width d, reference set) of the default joint map: ``fntk select``, ``fntk bench``
and ``benchmarks/feature_cost.py`` read it. The one line to change to switch the default (then
ship its reference moments: ``scripts/ship_reference_moments.py``); the reference set only
matters for ``basis="pca"``. PCA at d = 16 on ``builtin-v2`` replaced the d = 32 sketch: a
structure-kernel error of 0.002 / 0.088 (molecules / 35-atom clusters) against 0.18 / 0.63,
and on xtb-md with real fine-tuning a label saving of +60% against the sketch's +58%
(README "Feature maps", "Active-learning benchmark")."""
DEFAULT_JOINT_BASIS, DEFAULT_JOINT_DIM, DEFAULT_REFERENCE = DEFAULT_JOINT_MAP

DEFAULT_ENERGY_WEIGHT = 1.0
"""Default fine-tuning loss weight ``w_E`` on per-atom energies, 1/(eV/atom)^2 (the value of
``fntk.learn.FinetuneOptions.energy_weight``; a test keeps the two equal)."""
DEFAULT_FORCES_WEIGHT = 100.0
"""Default fine-tuning loss weight ``w_F`` on force components, 1/(eV/Angstrom)^2 (the value of
``fntk.learn.FinetuneOptions.force_weight``)."""
MAX_FORCE_ROW_WEIGHT = 1e3
"""Largest lambda, used when ``w_E = 0`` (the energy row carries no weight: force rows
dominate) or ``w_F / w_E`` is so large that lambda would exceed it."""
MIN_FORCE_ROW_WEIGHT = 1e-6
"""lambda used when ``w_F = 0`` (the joint map needs lambda > 0; use energy-ntk instead)."""


def force_row_weight(
    energy_weight: float, forces_weight: float, n_atoms: float | Sequence[int]
) -> float:
    """lambda of the joint map: the force-row weight that the fine-tuning loss implies.

    The fine-tuning loss of ``S`` structures (``fntk.learn.FinetuneOptions``, mse) is

    ``w_E / S * sum_s (dE_s / N_s)^2 + w_F / C * sum_{s,a,k} dF_sak^2``,  ``C = 3 sum_s N_s``,

    i.e. the energy term averages per structure and the force term per component of the whole
    set. Linearised in the parameters, its Gauss-Newton matrix is
    ``sum_s (w_E / S) e_s e_s^T + (w_F / C) G_s^T G_s`` with ``e_s = dE_s/dtheta / N_s`` the
    joint map's per-atom energy row and ``G_s = dF_s/dtheta`` its force rows. Relative to an
    energy row, a force row therefore weighs ``(w_F / C) / (w_E / S) = w_F / (3 N w_E)``, with
    ``N = C / (3 S)`` the *mean* atom count of the labelled set, and scaling the force rows by

    ``lambda = sqrt(w_F / (3 N w_E))``

    makes ``sum_s Phi_s^T Phi_s`` proportional to that matrix. Units: ``w_E`` in 1/(eV/atom)^2,
    ``w_F`` in 1/(eV/Angstrom)^2, so lambda is in (eV/atom)/(eV/Angstrom) = Angstrom (per
    atom); it is the weight for energy rows per atom (``per_atom=True``, the default).

    Parameters
    ----------
    energy_weight, forces_weight : float
        ``w_E`` and ``w_F`` of the loss (>= 0).
    n_atoms : float or sequence of int
        ``N``, or the atom counts of the labelled structures (their mean is used).

    Returns
    -------
    float
        lambda, clipped to [:data:`MIN_FORCE_ROW_WEIGHT`, :data:`MAX_FORCE_ROW_WEIGHT`] (the
        bounds are reached for ``w_F = 0`` and ``w_E = 0``), so that no weights, however tiny,
        make the force rows overflow.
    """
    if not (0 <= energy_weight < math.inf and 0 <= forces_weight < math.inf):
        raise ValueError(
            f"loss weights must be finite and >= 0, got {energy_weight}, {forces_weight}"
        )
    mean_atoms = float(n_atoms) if isinstance(n_atoms, int | float) else _mean(n_atoms)
    if not mean_atoms > 0:
        raise ValueError(f"the mean atom count must be positive, got {mean_atoms}")
    if energy_weight == 0.0:
        return MAX_FORCE_ROW_WEIGHT
    ratio = forces_weight / (3.0 * mean_atoms * energy_weight)  # inf when w_E underflows
    return min(max(math.sqrt(ratio), MIN_FORCE_ROW_WEIGHT), MAX_FORCE_ROW_WEIGHT)


def _mean(values: Sequence[int]) -> float:
    if len(values) == 0:
        raise ValueError("no atom counts given")
    return float(sum(values)) / len(values)


class _CommonOptions(BaseModel):
    """Settings shared by every map: how the model is run, not what is computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: ComputeDtype = Field(
        "float32", description="Floating-point type of the model and of the stored features."
    )
    batch_size: int = Field(
        8, ge=1, description="Most structures per model pass (one batched graph per pass)."
    )
    max_batch_atoms: int = Field(
        256,
        ge=1,
        description="Most atoms per model pass: a batch closes before it would exceed this "
        "(a larger structure gets a pass of its own). Large graphs batch badly on CPUs: four "
        "120-atom cells in one pass cost 1.8x four single passes.",
    )
    device: str = Field("auto", description="Torch device: 'auto' (CUDA when present), 'cpu', ...")


class EmbeddingOptions(_CommonOptions):
    """Pooled invariant node features of the last interaction layer; one row per structure.

    Units are those of the model's node features (dimensionless).
    """

    name: Literal["embedding"] = "embedding"
    per_element: bool = Field(
        False,
        description="Concatenate per-element means (zeros for absent elements) after the mean "
        "over all atoms.",
    )
    elements: tuple[int, ...] | None = Field(
        None,
        description="Atomic numbers whose per-element means are concatenated, in this order; "
        "default: every element the model knows (large for universal models).",
    )


class _NTKOptions(_CommonOptions):
    group: ParameterGroup = Field(
        "readout",
        description="Parameters theta the NTK is taken over: 'readout', 'last-interaction' "
        "(last interaction layer plus readout) or 'all'.",
    )
    dim: int = Field(
        512,
        ge=1,
        description="Sketch width d (number of feature columns). No random sketch is applied "
        "when the gradients span at most d dimensions (P <= d, or a linear readout whose "
        "hidden width is <= d); the features are then exact coordinates.",
    )
    seed: int = Field(0, ge=0, description="Seed of the random sketch Omega.")
    sketch: Literal["gaussian"] = Field(
        "gaussian",
        description="Construction of the sketch: 'gaussian', the seeded N(0, 1/d) "
        "parameter-space Omega (on a linear readout's hidden path B = M^T Omega, and the PSD "
        "square root (M^T M)^{1/2} when d >= F), a function of the seed alone. It is stored "
        "with the features, so stores and caches made by an earlier construction (an "
        "eigenbasis of M^T M, before this field existed) are refused instead of mixed in.",
    )
    basis: HiddenBasis = Field(
        "sketch",
        description="Basis of a linear readout's hidden space when d < F: 'sketch', the "
        "Gaussian sketch above; 'pca', the top principal directions of the exact rows of the "
        "reference set, completed by a sketch of their complement (fntk.features.basis). "
        "Ignored by the parameter path and when d >= F (exact).",
    )
    reference: ReferenceSet = Field(
        DEFAULT_REFERENCE,
        description="Reference set of the 'pca' basis, generated from the seed "
        "(fntk.features.reference): 'builtin-v1', small molecules (H, C, N, O), metal clusters "
        "and cells (Al, Cu, Ag, Au, Ni, Pd, Pt) of at most 14 atoms; 'builtin-v2', the same "
        "plus metal clusters of 11-48 atoms and adsorbate-on-slab cells, stratified by size.",
    )


class EnergyNTKOptions(_NTKOptions):
    """Sketched energy gradient ``Omega^T dE/dtheta``; one row per structure.

    Units: eV per unit parameter (eV/atom with ``per_atom``).
    """

    name: Literal["energy-ntk"] = "energy-ntk"
    per_atom: bool = Field(True, description="Divide the energy row by the atom count N.")


class ForceNTKOptions(_NTKOptions):
    """Sketched force Jacobian ``(dF/dtheta) Omega``; 3N rows per structure (atom-major, xyz).

    Units: eV/Angstrom per unit parameter.
    """

    name: Literal["force-ntk"] = "force-ntk"


class JointNTKOptions(_NTKOptions):
    """Energy row and weighted force rows ``[phi_E ; lambda (dF/dtheta) Omega]``; 1 + 3N rows.

    The default (:data:`DEFAULT_JOINT_MAP`: a PCA basis of width :data:`DEFAULT_JOINT_DIM` on
    the reference set :data:`DEFAULT_REFERENCE`) is the configuration ``fntk bench`` runs, the
    one whose active-learning numbers the README quotes, and the one
    ``benchmarks/feature_cost.py`` marks as the default. Every column of force rows costs one
    backward pass (~0.65-0.9 energy+force evaluations), so d = 16 costs ~9-10 evaluations
    (d = 32 of the sketch, the default before: ~9 on small molecules in forward mode, ~24 on
    35-atom clusters) at a structure-kernel error of 0.002 / 0.088 (molecules / clusters)
    against the sketch's 0.18 / 0.63 (README, "Feature maps").
    """

    name: Literal["joint"] = "joint"
    dim: int = Field(
        DEFAULT_JOINT_DIM, ge=1, description=_NTKOptions.model_fields["dim"].description
    )
    basis: HiddenBasis = Field(
        DEFAULT_JOINT_BASIS, description=_NTKOptions.model_fields["basis"].description
    )
    per_atom: bool = Field(True, description="Divide the energy row by the atom count N.")
    force_weight: float = Field(
        1.0,
        gt=0.0,
        description="lambda, in Angstrom: force rows are multiplied by it. The value that "
        "matches a fine-tuning loss with weights w_E (per-atom energy) and w_F (force "
        "components) on structures of N atoms on average is sqrt(w_F / (3 N w_E)), "
        "fntk.features.force_row_weight, which fntk select, fntk features and fntk bench use. "
        "The default 1 here weighs an eV/atom energy error like an eV/Angstrom force "
        "component error.",
    )


FeatureMapOptions = Annotated[
    EmbeddingOptions | EnergyNTKOptions | ForceNTKOptions | JointNTKOptions,
    Field(discriminator="name"),
]
"""Any map's options, told apart by their ``name`` field."""

_ADAPTER: TypeAdapter[FeatureMapOptions] = TypeAdapter(FeatureMapOptions)


def parse_feature_options(data: dict | str) -> FeatureMapOptions:
    """Build the options of the map named in ``data['name']`` from a dict or a JSON string.

    Raises
    ------
    pydantic.ValidationError
        Unknown map name, unknown field or invalid value; the message lists each problem.
    """
    if isinstance(data, str):
        return _ADAPTER.validate_json(data)
    return _ADAPTER.validate_python(data)


def options_to_json(options: FeatureMapOptions) -> str:
    """JSON text of ``options`` (every field, defaults included), readable by the parser."""
    return options.model_dump_json()
