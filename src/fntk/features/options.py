"""Options of the feature maps: one validated, JSON-serialisable pydantic model per map.

Every feature map is configured by exactly one of these objects, and the feature store keeps the
object beside the features it produced, so that features made with other settings are refused
(``fntk.features.store``). Defaults and units are documented here and nowhere else. The maps and
their mathematics are described in DESIGN.md section 2.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from fntk.options import ComputeDtype, ParameterGroup


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

    The default sketch width is small (12) because every column of force rows costs one extra
    backward pass through the model (~0.6 energy+force evaluations each): with it the map costs
    under 10 energy+force evaluations; ``benchmarks/feature_cost.py`` prints the kernel error of
    each width against the exact map.
    """

    name: Literal["joint"] = "joint"
    dim: int = Field(12, ge=1, description=_NTKOptions.model_fields["dim"].description)
    per_atom: bool = Field(True, description="Divide the energy row by the atom count N.")
    force_weight: float = Field(
        1.0,
        gt=0.0,
        description="lambda, in Angstrom: force rows are multiplied by it. It matches a "
        "fine-tuning loss w_E * (dE/N)^2 + w_F * sum_a dF_a^2 (energy per atom in eV/atom, "
        "force components in eV/Angstrom) when lambda = sqrt(w_F / w_E); e.g. w_F/w_E = 100 "
        "gives 10. The default 1 weighs an eV/atom energy error like an eV/Angstrom force "
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
