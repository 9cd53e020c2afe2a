"""MACE backend: any mace-torch model file (MACE-MP-0, MACE-OFF, a user's own fine-tune).

``mace:PATH`` loads a saved model object. ``mace-mp:SIZE`` and ``mace-off:SIZE`` use mace-torch's
own downloader, which needs the internet; offline they fail with a message asking for a file path.
The node features are the invariant output of the last product block (the input of the last,
non-linear readout); forces come from autograd in :class:`ModelBackend`.
"""

from __future__ import annotations

import os

import torch

from fntk.errors import ModelLoadError
from fntk.models._compat import import_e3nn
from fntk.models.base import ModelBackend, register_backend
from fntk.models.graph import GraphBatch


class MaceBackend(ModelBackend):
    """A mace-torch ``MACE``/``ScaleShiftMACE`` model behind the :class:`ModelBackend` interface."""

    def __init__(self, model: torch.nn.Module, spec: str) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        self.cutoff = float(model.r_max)
        self.species = frozenset(int(z) for z in model.atomic_numbers.tolist())
        self.n_node_features = int(model.products[-1].linear.irreps_out.dim)
        self._index_of_z = {int(z): i for i, z in enumerate(model.atomic_numbers.tolist())}
        self._captured: list[torch.Tensor] = []
        model.products[-1].register_forward_hook(self._capture_node_features)

    def _capture_node_features(self, module, inputs, output) -> None:
        self._captured.append(output)

    def _group_prefixes(self) -> dict[str, tuple[str, ...]]:
        last = len(self.model.interactions) - 1
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
            "head": torch.zeros(graph.n_graphs, dtype=torch.long, device=positions.device),
        }
        self._captured.clear()
        try:
            out = self.model(data, training=True, compute_force=False)
            node_features = self._captured[-1]
        finally:
            self._captured.clear()
        return out["energy"].reshape(-1), node_features


@register_backend(
    "mace",
    usage="mace:PATH",
    help="any mace-torch model file: MACE-MP-0, MACE-OFF, your own fine-tune",
    capabilities={"offline"},
)
def _load_mace_file(argument: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    if not argument:
        raise ModelLoadError("spec 'mace:PATH' needs a model file path after the colon")
    if not os.path.isfile(argument):
        raise ModelLoadError(f"MACE model file not found: {argument}")
    return _from_file(argument, f"mace:{os.path.abspath(argument)}", device, dtype)


@register_backend(
    "mace-mp",
    usage="mace-mp:small|medium",
    help="MACE-MP-0, fetched by mace-torch's downloader (needs internet)",
)
def _load_mace_mp(argument: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    size = argument or "medium"
    if size not in ("small", "medium"):
        raise ModelLoadError(f"mace-mp size must be small or medium, got {size!r}")
    _require_mace()
    from mace.calculators.foundations_models import download_mace_mp_checkpoint

    path = _download(lambda: download_mace_mp_checkpoint(size), f"mace-mp:{size}")
    return _from_file(path, f"mace-mp:{size}", device, dtype)


@register_backend(
    "mace-off",
    usage="mace-off:small|medium|large",
    help="MACE-OFF, fetched by mace-torch's downloader (needs internet)",
)
def _load_mace_off(argument: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    size = argument or "small"
    if size not in ("small", "medium", "large"):
        raise ModelLoadError(f"mace-off size must be small, medium or large, got {size!r}")
    _require_mace()
    from mace.calculators.foundations_models import mace_off

    model = _download(
        lambda: mace_off(model=size, return_raw_model=True, device="cpu"), f"mace-off:{size}"
    )
    return MaceBackend(model, f"mace-off:{size}").to(device=device, dtype=dtype)


def _require_mace() -> None:
    try:
        import_e3nn()
        import mace  # noqa: F401
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


def _from_file(path: str, spec: str, device: torch.device, dtype: torch.dtype) -> MaceBackend:
    _require_mace()
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a model file"
        raise ModelLoadError(f"could not load MACE model {path}: {exc}") from exc
    if not (hasattr(model, "interactions") and hasattr(model, "r_max")):
        raise ModelLoadError(
            f"{path} does not hold a MACE model object (got {type(model).__name__}); save it with "
            "torch.save(model, path)"
        )
    return MaceBackend(model, spec).to(device=device, dtype=dtype)
