"""MACE backend: any mace-torch model file (MACE-MP-0, MACE-OFF, a user's own fine-tune).

``mace:PATH`` loads a model file as ``mace_run_train`` writes it: ``NAME.model`` (the pickled
model object) or ``NAME_compiled.model`` (its TorchScript compilation; both give the same
energies, forces and features). ``mace:PATH@HEAD`` picks one head of a multi-head model
(``mace_run_train --heads``, and every foundation-model fine-tune with replay, where training
puts ``pt_head`` first); a multi-head model without a head is refused, as MACE's own calculator
does. ``mace-mp:SIZE`` and ``mace-off:SIZE`` use mace-torch's own downloader, which needs the
internet; offline they fail with a message asking for a file path.

The node features are the invariant output of the last product block (the input of the last,
non-linear readout), read from the ``node_feats`` output, so no module hook is needed and
compiled models work too; forces come from autograd in :class:`ModelBackend`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from fntk.errors import ModelLoadError
from fntk.models._compat import import_e3nn, quiet_third_party_imports
from fntk.models.base import ModelBackend, register_backend
from fntk.models.graph import GraphBatch

_DEFAULT_HEADS = ("Default",)


class MaceBackend(ModelBackend):
    """A mace-torch ``MACE``/``ScaleShiftMACE`` model behind the :class:`ModelBackend` interface.

    Parameters
    ----------
    model : torch.nn.Module
        The model object, eager or TorchScript (``NAME_compiled.model``).
    spec : str
        Spec of the model file without a head; the head is appended for multi-head models.
    head : str or None
        Head to run. Required when the model has more than one head.
    """

    def __init__(self, model: Any, spec: str, head: str | None = None) -> None:
        super().__init__()
        self.model: Any = model  # mace's ScaleShiftMACE (or TorchScript): dynamic attributes
        self.heads = model_heads(model)
        self.head = _choose_head(self.heads, head, spec)
        self._head_index = self.heads.index(self.head)
        self.spec = f"{spec}@{self.head}" if len(self.heads) > 1 else spec
        self.cutoff = float(model.r_max)
        numbers = [int(z) for z in model.atomic_numbers.tolist()]
        self.species = frozenset(numbers)
        self._index_of_z = {z: i for i, z in enumerate(numbers)}
        self._n_interactions = len(list(model.interactions.children()))
        self.n_node_features = _last_product_width(model)

    def _group_prefixes(self) -> dict[str, tuple[str, ...]]:
        last = self._n_interactions - 1
        return {
            "readout": ("model.readouts.",),
            "last-interaction": (
                f"model.interactions.{last}.",
                f"model.products.{last}.",
                "model.readouts.",
            ),
        }

    def _energy_and_node_features(
        self, graph: GraphBatch, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        species_index = torch.tensor(
            [self._index_of_z[int(z)] for z in graph.atomic_numbers.tolist()],
            device=positions.device,
        )
        node_attrs = torch.nn.functional.one_hot(species_index, len(self._index_of_z))
        data = {
            "positions": positions,
            "node_attrs": node_attrs.to(positions.dtype),
            "edge_index": graph.edge_index,
            "shifts": graph.shift_vectors(),
            "unit_shifts": graph.cell_shifts,
            "cell": graph.cells.reshape(-1, 3),
            "batch": graph.batch,
            "ptr": graph.ptr,
            "head": torch.full(
                (graph.n_graphs,), self._head_index, dtype=torch.long, device=positions.device
            ),
        }
        out = self.model(data, training=True, compute_force=False)
        # node_feats concatenates every layer's product output; the last layer's come last.
        node_features = out["node_feats"][:, -self.n_node_features :]
        return out["energy"].reshape(-1), node_features


def model_heads(model: torch.nn.Module) -> list[str]:
    """Head names of a MACE model, in the model's order (``["Default"]`` for older files)."""
    heads = getattr(model, "heads", None)
    return [str(h) for h in heads] if heads else list(_DEFAULT_HEADS)


def split_head(argument: str) -> tuple[str, str | None]:
    """``PATH@HEAD`` into ``(PATH, HEAD)``; an existing file whose name holds ``@`` is a path."""
    if "@" not in argument or os.path.isfile(argument):
        return argument, None
    path, _, head = argument.rpartition("@")
    if not head:
        raise ModelLoadError(f"model spec {argument!r} ends in '@'; write PATH@HEAD or PATH")
    return path, head


def _choose_head(heads: list[str], head: str | None, spec: str) -> str:
    if head is None:
        if len(heads) > 1:
            raise ModelLoadError(
                f"{spec} is a multi-head MACE model (heads: {', '.join(heads)}); name the head "
                f"to run as {spec}@HEAD, e.g. {spec}@{heads[-1]}"
            )
        return heads[0]
    if head not in heads:
        raise ModelLoadError(f"{spec} has no head {head!r}; its heads: {', '.join(heads)}")
    return head


def _last_product_width(model: Any) -> int:
    """Width of the last product block's output (eager or TorchScript model)."""
    last = list(model.products.children())[-1].linear
    irreps: Any = getattr(last, "irreps_out", None)
    if hasattr(irreps, "dim"):
        return int(irreps.dim)
    # TorchScript keeps irreps as plain tuples; e3nn's Linear has one mask entry per output.
    mask = getattr(last, "output_mask", None)
    if mask is None:
        raise ModelLoadError("cannot read the node-feature width of this MACE model")
    return int(mask.numel())


@register_backend(
    "mace",
    usage="mace:PATH[@HEAD]",
    help="any mace-torch model file: MACE-MP-0, MACE-OFF, your own fine-tune "
    "(NAME.model or NAME_compiled.model; @HEAD picks a head)",
    capabilities={"offline"},
)
def _load_mace_file(argument: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    if not argument:
        raise ModelLoadError("spec 'mace:PATH' needs a model file path after the colon")
    path, head = split_head(argument)
    if not os.path.isfile(path):
        raise ModelLoadError(f"MACE model file not found: {path}")
    return _from_file(path, f"mace:{os.path.abspath(path)}", device, dtype, head)


@register_backend(
    "mace-mp",
    usage="mace-mp:small|medium",
    help="MACE-MP-0, fetched by mace-torch's downloader (needs internet)",
)
def _load_mace_mp(argument: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    size, head = split_head(argument)
    size = size or "medium"
    if size not in ("small", "medium"):
        raise ModelLoadError(f"mace-mp size must be small or medium, got {size!r}")
    _require_mace()
    from mace.calculators.foundations_models import download_mace_mp_checkpoint

    path = _download(lambda: download_mace_mp_checkpoint(size), f"mace-mp:{size}")
    return _from_file(path, f"mace-mp:{size}", device, dtype, head)


@register_backend(
    "mace-off",
    usage="mace-off:small|medium|large",
    help="MACE-OFF, fetched by mace-torch's downloader (needs internet)",
)
def _load_mace_off(argument: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    size, head = split_head(argument)
    size = size or "small"
    if size not in ("small", "medium", "large"):
        raise ModelLoadError(f"mace-off size must be small, medium or large, got {size!r}")
    _require_mace()
    from mace.calculators.foundations_models import mace_off

    model = _download(
        lambda: mace_off(model=size, return_raw_model=True, device="cpu"), f"mace-off:{size}"
    )
    return _to(MaceBackend(model, f"mace-off:{size}", head), device, dtype, f"mace-off:{size}")


def _require_mace() -> None:
    try:
        with quiet_third_party_imports():
            import_e3nn()
            import mace.modules  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError("MACE models need mace-torch: pip install 'fntk[mace]'") from exc


def _download(fetch, spec: str):
    try:
        return fetch()
    except Exception as exc:  # urllib, http and mace's own RuntimeError all mean the same here
        raise ModelLoadError(
            f"could not download {spec} ({type(exc).__name__}: {exc}); offline, download the "
            "model file elsewhere and pass its path as --model mace:/path/to/model.model"
        ) from exc


def _from_file(
    path: str, spec: str, device: torch.device, dtype: torch.dtype, head: str | None
) -> MaceBackend:
    _require_mace()
    try:
        # torch.load dispatches a TorchScript archive (NAME_compiled.model) to torch.jit.load
        # and says so, and unpickling e3nn's scripted modules warns that torch.jit.load is
        # deprecated: nothing for the user to act on, so it goes to the debug log.
        with quiet_third_party_imports():
            model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a model file"
        raise ModelLoadError(f"could not load MACE model {path}: {exc}") from exc
    if not all(hasattr(model, a) for a in ("interactions", "products", "r_max")):
        raise ModelLoadError(
            f"{path} does not hold a MACE model object (got {type(model).__name__}); save it with "
            "torch.save(model, path)"
        )
    compiled = isinstance(model, torch.jit.ScriptModule)
    try:
        backend = MaceBackend(model, spec, head)
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        if not compiled:
            raise
        raise ModelLoadError(f"{_compiled_hint(path)} (reading it failed: {exc})") from exc
    return _to(backend, device, dtype, _compiled_hint(path) if compiled else None)


def _to(
    backend: MaceBackend, device: torch.device, dtype: torch.dtype, compiled_hint: str | None
) -> MaceBackend:
    """Move to ``device``/``dtype``; a compiled model that cannot run there says what to pass."""
    backend = backend.to(device=device, dtype=dtype)
    if compiled_hint is not None:
        _check_runs(backend, compiled_hint)
    return backend


def _check_runs(backend: MaceBackend, hint: str) -> None:
    """Run a compiled model once on a dimer: TorchScript code may fix dtypes or devices."""
    from ase import Atoms

    z = min(backend.species)
    dimer = Atoms(numbers=[z, z], positions=[[0, 0, 0], [0, 0, 0.5 * backend.cutoff]])
    try:
        backend.predict([dimer])
    except RuntimeError as exc:
        raise ModelLoadError(f"{hint} (running it failed: {str(exc).splitlines()[0]})") from exc


def _compiled_hint(path: str) -> str:
    stem = os.path.basename(path)
    eager = stem.replace("_compiled.model", ".model") if "_compiled" in stem else "NAME.model"
    return (
        f"{path} is a compiled (TorchScript) MACE model that fntk cannot use here; pass the "
        f"model file mace_run_train wrote next to it instead ({eager})"
    )
