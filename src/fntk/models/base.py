"""The model-backend interface that feature maps and fine-tuning use, and its registry.

A backend wraps one pretrained MLIP as a :class:`torch.nn.Module`. Given a batched neighbour
graph it returns the energy of every structure and the invariant per-atom features of the last
interaction layer (the input of the readout). Forces are ``-dE/dr`` by autograd, so double
backward (derivatives of forces with respect to parameters) works on every backend. Backends are
found by spec strings (``sevennet-0``, ``mace:PATH``, ...) through :func:`load_backend`.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from ase import Atoms
from torch import nn

from fntk.errors import CapabilityError, ModelLoadError
from fntk.models.graph import GraphBatch, build_graph_batch
from fntk.options import PARAMETER_GROUPS
from fntk.registry import Registry

LINEAR_READOUT = "linear_readout"
"""Capability: the energy is ``sum_i w_{z_i} a(theta_readout)^T h_i + const`` with ``h_i`` the
node features, ``w`` a fixed per-species weight and ``a`` the readout's coefficient vector, so
readout gradients factor through the pooled features (``fntk.features.readout``). A backend
declaring it implements :meth:`ModelBackend.readout_energy` and
:meth:`ModelBackend.readout_atom_weights`."""
LINEARITY_TOLERANCE = 1e-4
"""Largest :func:`readout_linearity_error` of a readout that counts as linear (float32 rounding)."""


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` torch CPU (intra-op) threads inside the block; ``None`` leaves the count
    as it is. The previous count is restored afterwards."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def reproducible_execution() -> Iterator[None]:
    """Run model code so that the same input gives bit-identical output, then restore torch.

    Two torch settings are changed for the duration only. Deterministic algorithms: on CPU with
    several threads, the backward pass of indexing (``x[edge_index]``, used by every
    message-passing model) accumulates with ``index_put_`` in a thread-dependent order, which
    changes float32 forces by ~1e-7 from call to call. TorchScript optimisation off: the
    profiling executor re-optimises e3nn's scripted modules after their first calls, which also
    changes rounding. Wrap backward passes too: the flags are read when kernels run.
    ``warn_only`` keeps ops without a deterministic kernel (some CUDA ones) working.
    """
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.jit.optimized_execution(False):
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@dataclass
class ModelOutput:
    """Outputs of one batched forward pass.

    Attributes
    ----------
    energy : Tensor, shape (n_graphs,), eV
    node_features : Tensor, shape (n_atoms, n_node_features)
        Invariant features of the last interaction layer (readout input).
    positions : Tensor, shape (n_atoms, 3), Angstrom
        The positions the energy was computed from (differentiate with respect to these).
    """

    energy: torch.Tensor
    node_features: torch.Tensor
    positions: torch.Tensor


class ModelBackend(nn.Module, abc.ABC):
    """One pretrained MLIP behind a small interface.

    Subclasses set ``spec``, ``cutoff`` (Angstrom), ``species`` (supported atomic numbers) and
    ``n_node_features``, and implement :meth:`_energy_and_node_features` and
    :meth:`_group_prefixes`.
    """

    spec: str
    cutoff: float
    species: frozenset[int]
    n_node_features: int
    capabilities: frozenset[str] = frozenset({"energy", "forces", "embedding", "parameters"})
    """What the backend can do; feature maps check it (e.g. :data:`LINEAR_READOUT`)."""

    @abc.abstractmethod
    def _energy_and_node_features(
        self, graph: GraphBatch, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies (n_graphs,) and last-layer invariant node features (n_atoms, F)."""

    @abc.abstractmethod
    def _group_prefixes(self) -> dict[str, tuple[str, ...]]:
        """Parameter-name prefixes of the ``readout`` and ``last-interaction`` groups."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def build_graph(self, structures: Sequence[Atoms]) -> GraphBatch:
        """Batch ``structures`` into one neighbour graph on this backend's device and dtype."""
        return build_graph_batch(structures, self.cutoff, dtype=self.dtype, device=self.device)

    def forward(self, graph: GraphBatch, positions: torch.Tensor | None = None) -> ModelOutput:
        """Energies and node features of ``graph``, at ``positions`` (default: the graph's)."""
        if positions is None:
            positions = graph.positions
        with reproducible_execution():
            energy, node_features = self._energy_and_node_features(graph, positions)
        return ModelOutput(energy=energy, node_features=node_features, positions=positions)

    def energy_and_forces(
        self, graph: GraphBatch, *, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies (n_graphs,) in eV and forces (n_atoms, 3) in eV/Angstrom.

        With ``create_graph=True`` the forces stay differentiable with respect to parameters
        (and positions), which force-NTK features and force-matching fine-tuning need.
        """
        positions = graph.positions.detach().requires_grad_(True)
        with torch.enable_grad(), reproducible_execution():
            energy = self.forward(graph, positions).energy
            (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph)
        if not create_graph:
            energy = energy.detach()
        return energy, -grad

    def predict(
        self, structures: Sequence[Atoms], *, batch_size: int = 16
    ) -> list[tuple[float, torch.Tensor]]:
        """Energy (eV) and forces (eV/Angstrom, CPU float64) of each structure, batched."""
        results = []
        for start in range(0, len(structures), batch_size):
            graph = self.build_graph(structures[start : start + batch_size])
            energy, forces = self.energy_and_forces(graph)
            for e, f in zip(energy, torch.split(forces, graph.n_atoms.tolist())):
                results.append((float(e), f.detach().cpu().double()))
        return results

    def parameter_group(self, group: str) -> dict[str, nn.Parameter]:
        """Named parameters of ``group`` (``readout``, ``last-interaction`` or ``all``).

        Parameters that the pretrained model keeps frozen (``requires_grad=False``) are left out.
        """
        if group not in PARAMETER_GROUPS:
            raise CapabilityError(
                f"unknown parameter group {group!r}; choose one of {', '.join(PARAMETER_GROUPS)}"
            )
        named = {n: p for n, p in self.named_parameters() if p.requires_grad}
        if group == "all":
            return named
        prefixes = self._group_prefixes()[group]
        return {n: p for n, p in named.items() if n.startswith(prefixes)}

    def readout_energy(self, node_features: torch.Tensor) -> torch.Tensor:
        """Readout layers applied to each row of ``node_features`` (n, F): ``a^T h``, shape (n,).

        Only backends with the :data:`LINEAR_READOUT` capability implement it; the species
        weight, shift and sum over atoms are not applied.
        """
        raise CapabilityError(f"model {self.spec} does not declare a linear readout")

    def readout_atom_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-type weight ``w`` of the :data:`LINEAR_READOUT` sum, shape (n_types,), and the
        type index of each atomic number, shape (119,), int64 (-1: unknown element)."""
        raise CapabilityError(f"model {self.spec} does not declare a linear readout")

    def remember_pretrained(self) -> None:
        """Keep a copy of the current weights as the state :meth:`restore_pretrained` returns to."""
        self._pretrained_state = {k: v.detach().clone() for k, v in self.state_dict().items()}

    def restore_pretrained(self) -> None:
        """Reset every weight to the pretrained values (each fine-tuning round starts here)."""
        self.load_state_dict(self._pretrained_state)

    def check_species(self, atomic_numbers: Sequence[int]) -> list[int]:
        """Atomic numbers in ``atomic_numbers`` that this model does not know."""
        return sorted({int(z) for z in atomic_numbers} - self.species)


def readout_linearity_error(
    readout: Callable[[torch.Tensor], torch.Tensor], coefficients: torch.Tensor
) -> float:
    """Relative deviation of ``readout(h)`` from ``h . coefficients`` on seeded probes and 0.

    The probes are made on the device and in the dtype of ``coefficients``, and every
    comparison stays there (the readout of a GPU model is checked on the GPU).
    """
    n_hidden = coefficients.shape[0]
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(5, n_hidden, generator=generator, dtype=torch.float64)
    probe = torch.cat([probe.to(coefficients.device, coefficients.dtype), coefficients[None] * 0])
    with torch.no_grad():
        values = readout(probe)
    expected = probe @ coefficients
    scale = (probe.abs() @ coefficients.abs()).max().clamp_min(torch.finfo(values.dtype).tiny)
    return float((values - expected).abs().max() / scale)


BackendLoader = Callable[[str, torch.device, torch.dtype], ModelBackend]
BACKENDS: Registry[BackendLoader] = Registry("model backend")
"""Loaders by spec prefix, with usage (``mace:PATH``), help and capabilities (``offline``)."""


def register_backend(
    prefix: str, *, usage: str, help: str, capabilities: frozenset[str] | set[str] = frozenset()
) -> Callable[[BackendLoader], BackendLoader]:
    """Register a loader for specs ``prefix`` or ``prefix:ARGUMENT``.

    ``usage`` is how users write the spec (``"mace:PATH"``); ``capabilities`` holds
    ``"offline"`` when the model loads without a network.
    """
    return BACKENDS.register(prefix, usage=usage, help=help, capabilities=capabilities)


def backend_registry() -> Registry[BackendLoader]:
    """The complete backend registry (imports the built-in backend modules once)."""
    _import_builtin_backends()
    return BACKENDS


def available_backends() -> list[str]:
    """Registered spec prefixes."""
    return sorted(backend_registry().names())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for but no CUDA GPU is visible; use cpu")
    return resolved


def check_model_spec(spec: str) -> None:
    """Raise :class:`ModelLoadError` for a spec no backend takes, or whose model file is
    missing (cheap: loads nothing, so commands check ``--model`` before any work)."""
    registry = backend_registry()
    prefix, _, argument = spec.partition(":")
    if prefix not in registry:
        raise ModelLoadError(
            f"unknown model spec {spec!r}; valid forms: {registry.choices()} (see fntk models)"
        )
    usage = registry.entry(prefix).usage
    if "PATH" in usage:
        path = argument.partition("@")[0] if "@HEAD" in usage else argument
        if not path:
            raise ModelLoadError(f"model spec {spec!r} names no file; write {usage}")
        if not os.path.exists(path):
            raise ModelLoadError(f"model file not found: {path} (from --model {spec})")


def load_backend(
    spec: str, *, device: str | torch.device = "auto", dtype: torch.dtype = torch.float32
) -> ModelBackend:
    """Load the model named by ``spec`` (see README, "Model backends") in eval mode."""
    registry = backend_registry()
    check_model_spec(spec)
    prefix, _, argument = spec.partition(":")
    loader = registry.get(prefix)
    backend = loader(argument, resolve_device(device), dtype).eval()
    backend.remember_pretrained()
    return backend


def _import_builtin_backends() -> None:
    # Imported lazily: sevenn and mace-torch are heavy, and mace-torch is an optional extra
    # (so3lr imports so3krates-torch, another optional extra, only when the model loads).
    from fntk.models import mace, sevennet, so3lr  # noqa: F401
