"""SO3LR backend: the molecular foundation model whose weights ship in ``so3krates-torch``.

SO3LR (Kabylda et al., 2024) is a So3krates network (3 Euclidean-transformer layers, 128
invariant channels) plus physical terms: ZBL repulsion on the short-range graph (4.5 Angstrom),
and electrostatics of predicted partial charges and dispersion from predicted Hirshfeld ratios
on a long-range graph. The net charge and spin of a structure enter through embeddings and the
charge equilibration of the partial-charge head; they are read from ``atoms.info["charge"]``
and ``atoms.info["total_spin"]`` (0 when absent), the keys its ASE calculator
(``so3krates_torch.calculator.so3.SO3LRCalculator``) reads. The long-range cutoff (12 Angstrom)
and the dispersion damping width (2 Angstrom) are that calculator's defaults, so energies and
forces equal the calculator's.

:meth:`SO3LRBackend.build_graph` builds one neighbour list at the long-range cutoff and marks
the edges within the short-range cutoff, measured in float64 from the input positions (as the
calculator does). The node features are the invariant output of the last transformer layer,
which every output head reads. The energy head is an MLP (128 -> 128, SiLU, -> 1) followed by a
per-element scale and shift, so the energy is *not* linear in the node features: SO3LR has no
``linear_readout`` capability, and NTK features take the generic parameter path.

Parameter groups: ``readout`` holds the three heads on the node features (atomic energy,
partial charges, Hirshfeld ratios; their per-element scales and shifts included);
``last-interaction`` adds the last transformer layer; ``all`` also holds the embeddings (element,
charge, spin), the first layers and the ZBL parameters.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from ase import Atoms
from ase.data import chemical_symbols

from fntk.errors import InputError, ModelLoadError
from fntk.models._compat import quiet_third_party_imports
from fntk.models.base import ModelBackend, register_backend
from fntk.models.graph import GraphBatch, build_graph_batch

SO3LR_ELEMENTS = (1, 6, 7, 8, 9, 15, 16, 17)
"""Atomic numbers SO3LR was trained on (H, C, N, O, F, P, S, Cl): the elements whose learned
per-element energy scale differs from its initial value 1 (checked against the weights in the
tests). The network embeds all 118 elements, so others would run silently; they are refused."""

LONG_RANGE_CUTOFF = 12.0
"""Angstrom; ``r_max_lr`` of SO3LRCalculator (the saved model leaves it unset)."""
DISPERSION_DAMPING = 2.0
"""Angstrom; ``dispersion_energy_cutoff_lr_damping`` of SO3LRCalculator."""
CHARGE_KEY = "charge"
"""``atoms.info`` key of the net charge (elementary charges), as SO3LRCalculator reads it."""
SPIN_KEY = "total_spin"
"""``atoms.info`` key of the total spin S (unpaired electrons / 2), as SO3LRCalculator reads it."""

_N_ELEMENTS = 118
_HEADS = ("atomic_energy_output_block.", "partial_charges_output_block.", "hirshfeld_output_block.")


@dataclass(frozen=True)
class ChargedGraphBatch(GraphBatch):
    """A :class:`GraphBatch` at SO3LR's long-range cutoff, with net charge and spin.

    Attributes
    ----------
    total_charge : Tensor, shape (n_graphs,)
        Net charge of each structure, elementary charges.
    total_spin : Tensor, shape (n_graphs,)
        Total spin S of each structure.
    short_range : BoolTensor, shape (n_edges,)
        Edges no longer than the model's short-range cutoff (the message-passing graph).
    """

    total_charge: torch.Tensor
    total_spin: torch.Tensor
    short_range: torch.Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype) -> ChargedGraphBatch:
        """Copy onto ``device``, with float tensors cast to ``dtype``."""
        moved = super().to(device, dtype)
        values = {f.name: getattr(moved, f.name) for f in fields(GraphBatch)}
        return ChargedGraphBatch(
            **values,
            total_charge=self.total_charge.to(device, dtype),
            total_spin=self.total_spin.to(device, dtype),
            short_range=self.short_range.to(device),
        )


class SO3LRBackend(ModelBackend):
    """An ``so3krates_torch`` SO3LR model behind the :class:`ModelBackend` interface.

    Parameters
    ----------
    model : so3krates_torch.modules.models.SO3LR
        The model object as its wheel stores it; its long-range settings are set here.
    spec : str
    """

    def __init__(self, model: Any, spec: str) -> None:
        super().__init__()
        model.r_max_lr = LONG_RANGE_CUTOFF
        model.dispersion_energy_cutoff_lr_damping = DISPERSION_DAMPING
        self.model: Any = model  # so3krates' SO3LR: dynamic attributes
        self.spec = spec
        self.cutoff = float(model.r_max)
        self.long_range_cutoff = LONG_RANGE_CUTOFF
        self.species = frozenset(SO3LR_ELEMENTS)
        self.n_node_features = int(model.num_features)
        self._n_layers = int(model.num_layers)

    def _group_prefixes(self) -> dict[str, tuple[str, ...]]:
        readout = tuple(f"model.{head}" for head in _HEADS)
        last = f"model.euclidean_transformers.{self._n_layers - 1}."
        return {"readout": readout, "last-interaction": (last, *readout)}

    def build_graph(self, structures: Sequence[Atoms]) -> ChargedGraphBatch:
        """Long-range graph of ``structures`` with short-range edges marked, charge and spin."""
        self._refuse_unknown_elements(structures)
        graph = build_graph_batch(structures, self.long_range_cutoff)  # float64, CPU
        senders, receivers = graph.edge_index
        vectors = graph.positions[receivers] - graph.positions[senders] + graph.shift_vectors()
        short_range = (vectors**2).sum(dim=1) <= self.cutoff**2
        values = {f.name: getattr(graph, f.name) for f in fields(GraphBatch)}
        charged = ChargedGraphBatch(
            **values,
            total_charge=torch.tensor(
                [_info_number(a, CHARGE_KEY, i) for i, a in enumerate(structures)],
                dtype=torch.float64,
            ),
            total_spin=torch.tensor(
                [_info_number(a, SPIN_KEY, i) for i, a in enumerate(structures)],
                dtype=torch.float64,
            ),
            short_range=short_range,
        )
        return charged.to(self.device, self.dtype)

    def _refuse_unknown_elements(self, structures: Sequence[Atoms]) -> None:
        for index, atoms in enumerate(structures):
            unknown = self.check_species(atoms.numbers)
            if unknown:
                names = ", ".join(chemical_symbols[z] for z in unknown)
                raise InputError(
                    f"structure {index} of the batch holds {names}, which SO3LR does not know",
                    hint="SO3LR covers H, C, N, O, F, P, S, Cl",
                )

    def _energy_and_node_features(
        self, graph: GraphBatch, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(graph, ChargedGraphBatch):
            raise TypeError("SO3LR needs the graph of SO3LRBackend.build_graph (long-range edges)")
        if not positions.requires_grad:
            # so3krates switches requires_grad on for the positions it is given; a fresh alias
            # keeps the caller's tensor (often the graph's own) untouched.
            positions = positions.detach()
        short = graph.short_range
        shifts = graph.shift_vectors()
        head = torch.zeros(graph.n_graphs, dtype=torch.long, device=positions.device)
        one_hot = torch.nn.functional.one_hot(graph.atomic_numbers - 1, _N_ELEMENTS)
        data = {
            "positions": positions,
            "edge_index": graph.edge_index[:, short],
            "shifts": shifts[short],
            "unit_shifts": graph.cell_shifts[short],
            "edge_index_lr": graph.edge_index,
            "shifts_lr": shifts,
            "unit_shifts_lr": graph.cell_shifts,
            "cell": graph.cells.reshape(-1, 3),
            "batch": graph.batch,
            "ptr": graph.ptr,
            "node_attrs": one_hot.to(positions.dtype),
            "atomic_numbers": graph.atomic_numbers,
            "total_charge": graph.total_charge,
            "total_spin": graph.total_spin,
            "head": head,
        }
        with _restored_print_options():
            out = self.model(data, compute_force=False, return_descriptors=True)
        return out["energy"].reshape(-1), out["inv_features"]


def _info_number(atoms: Atoms, key: str, index: int) -> float:
    value = atoms.info.get(key, 0.0)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise InputError(
            f"structure {index} of the batch has info[{key!r}] = {value!r}, not a number",
            hint="write it as a number, or leave it out for 0",
        )
    return number


@contextlib.contextmanager
def _restored_print_options() -> Iterator[None]:
    """SO3LR's forward calls ``torch.set_printoptions(precision=8)``; undo it afterwards."""
    from torch._tensor_str import PRINT_OPTS

    precision = PRINT_OPTS.precision
    try:
        yield
    finally:
        torch.set_printoptions(precision=precision)


@register_backend(
    "so3lr",
    usage="so3lr",
    help="SO3LR (molecular: H C N O F P S Cl; long-range electrostatics and dispersion), "
    "shipped in the so3krates-torch wheel (pip install 'fntk[so3lr]')",
    capabilities={"offline"},
)
def _load_so3lr(argument: str, device: torch.device, dtype: torch.dtype) -> SO3LRBackend:
    if argument:
        raise ModelLoadError("spec 'so3lr' takes no argument")
    try:
        import importlib.resources as resources

        with quiet_third_party_imports():
            import so3krates_torch.modules.models  # noqa: F401
        path = resources.files("so3krates_torch.pretrained.so3lr") / "so3lr.model"
    except ImportError as exc:
        raise ModelLoadError("SO3LR needs so3krates-torch: pip install 'fntk[so3lr]'") from exc
    default_dtype = torch.get_default_dtype()
    try:
        with quiet_third_party_imports(), resources.as_file(path) as file:
            model = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zip and torch errors all mean a broken install
        raise ModelLoadError(f"could not load the SO3LR weights of so3krates-torch: {exc}") from exc
    finally:
        torch.set_default_dtype(default_dtype)  # so3krates' constructors set it globally
    return SO3LRBackend(model, "so3lr").to(device=device, dtype=dtype)
