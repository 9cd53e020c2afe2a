"""SevenNet backend: every model the ``sevenn`` wheel carries (offline), or a checkpoint file.

The model is run module by module on a batched graph dictionary (edge vectors computed here from
the positions), skipping SevenNet's own force module: forces come from
:meth:`ModelBackend.energy_and_forces` (autograd with respect to positions), so they are
differentiable in parameters. The node features are the 128 invariant channels entering the
readout (``reduce_input_to_hidden``), which for SevenNet-0 is linear (128 -> 64 -> 1) followed by
a fixed species-wise scale and shift: such a model declares the ``linear_readout`` capability
(checked on the loaded weights, so a checkpoint with a biased readout does not).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from fntk.errors import ModelLoadError
from fntk.models._compat import import_e3nn
from fntk.models.base import (
    LINEAR_READOUT,
    LINEARITY_TOLERANCE,
    ModelBackend,
    readout_linearity_error,
    register_backend,
)
from fntk.models.graph import GraphBatch

_READOUT_MODULES = ("reduce_input_to_hidden", "reduce_hidden_to_energy")
_SKIPPED_MODULES = ("force_output",)
_ONEHOT_MODULE = "onehot_idx_to_onehot"


class SevenNetBackend(ModelBackend):
    """A SevenNet ``AtomGraphSequential`` model behind the :class:`ModelBackend` interface."""

    def __init__(self, model: Any, config: dict, spec: str) -> None:
        super().__init__()
        import sevenn._keys as keys

        self._keys = keys
        model.set_is_batch_data(True)
        self.model: Any = model  # sevenn's AtomGraphSequential: dynamic attributes
        self.spec = spec
        self.cutoff = float(config[keys.CUTOFF])
        self.species = frozenset(int(z) for z in config[keys.TYPE_MAP])
        self.n_node_features = int(model.reduce_input_to_hidden.linear.irreps_in.dim)
        interaction_ids = sorted(
            {int(name.split("_")[0]) for name in model._modules if name[0].isdigit()}
        )
        self._last_interaction = f"{interaction_ids[-1]}_"
        if self._readout_is_linear():
            self.capabilities = self.capabilities | {LINEAR_READOUT}

    def _readout_is_linear(self) -> bool:
        """Readout modules present and ``a^T h`` linear in h (no bias): probed, not assumed."""
        model = self.model
        needed = (*_READOUT_MODULES, "rescale_atomic_energy", "reduce_total_enegy")
        if any(getattr(model, name, None) is None for name in needed):
            return False
        parameter = next(model.parameters())
        n = self.n_node_features
        with torch.no_grad():
            eye = torch.eye(n, dtype=parameter.dtype, device=parameter.device)
            coefficients = self.readout_energy(eye)
        return readout_linearity_error(self.readout_energy, coefficients) <= LINEARITY_TOLERANCE

    def readout_energy(self, node_features: torch.Tensor) -> torch.Tensor:
        first, second = (getattr(self.model, name) for name in _READOUT_MODULES)
        data = second(first({first.key_input: node_features}))
        return data[second.key_output].reshape(-1)

    def readout_atom_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        type_index = torch.arange(119, device=self.device)
        if model.eval_type_map:
            type_index = model._atomic_numbers_to_onehot(type_index)
        scale = model.rescale_atomic_energy.scale.detach()
        return (scale * float(model.reduce_total_enegy.constant)).to(self.dtype), type_index

    def _group_prefixes(self) -> dict[str, tuple[str, ...]]:
        readout = tuple(f"model.{m}." for m in _READOUT_MODULES)
        return {
            "readout": readout,
            "last-interaction": (f"model.{self._last_interaction}", *readout),
        }

    def _energy_and_node_features(
        self, graph: GraphBatch, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._keys
        cells = graph.cells
        volume = torch.abs(torch.linalg.det(cells))
        senders, receivers = graph.edge_index
        edge_vec = positions[receivers] - positions[senders] + graph.shift_vectors()
        data = {
            k.NODE_FEATURE: graph.atomic_numbers,
            k.ATOMIC_NUMBERS: graph.atomic_numbers,
            k.POS: positions,
            k.EDGE_IDX: graph.edge_index,
            k.EDGE_VEC: edge_vec,
            k.CELL: cells.reshape(-1, 3),
            k.CELL_SHIFT: graph.cell_shifts,
            k.CELL_VOLUME: torch.where(volume > 0, volume, torch.finfo(cells.dtype).eps),
            k.NUM_ATOMS: graph.n_atoms,
            k.BATCH: graph.batch,
        }
        model = self.model
        if model.eval_type_map:
            data[k.NODE_FEATURE] = model._atomic_numbers_to_onehot(graph.atomic_numbers)
        node_features: torch.Tensor | None = None
        for name, module in model._modules.items():
            if name in _SKIPPED_MODULES:
                continue
            if name == _READOUT_MODULES[0]:
                node_features = data[k.NODE_FEATURE]
            data = module(data)
            if name == _ONEHOT_MODULE:
                # SevenNet's one-hot embedding always returns float32; follow the model dtype.
                for key in (k.NODE_FEATURE, k.NODE_ATTR):
                    data[key] = data[key].to(positions.dtype)
        energy = data[k.PRED_TOTAL_ENERGY].reshape(-1)
        if node_features is None:
            raise RuntimeError("SevenNet model has no readout module to read node features from")
        return energy, node_features


WHEEL_MODELS: dict[str, tuple[str, str]] = {
    "sevennet-0": ("7net-0", "SevenNet-0 (11Jul2024), shipped in the sevenn wheel. Default."),
    "sevennet-0-22may2024": (
        "7net-0_22May2024",
        "SevenNet-0 (22May2024), the first SevenNet-0 release, shipped in the sevenn wheel",
    ),
    "sevennet-l3i5": (
        "7net-l3i5",
        "SevenNet-l3i5 (l_max 3, 5 interaction layers), shipped in the sevenn wheel",
    ),
}
"""fntk spec -> (sevenn's name for ``pretrained_name_to_path``, help) of every model the
installed ``sevenn`` wheel carries (0.10: none is multi-fidelity, so none takes a modal)."""


def _register_wheel_model(spec: str, sevenn_name: str, help: str) -> None:
    def load(argument: str, device: torch.device, dtype: torch.dtype) -> SevenNetBackend:
        if argument:
            raise ModelLoadError(f"spec {spec!r} takes no argument; for a file use sevennet:PATH")
        import_e3nn()
        from sevenn.util import pretrained_name_to_path

        return _load_checkpoint(pretrained_name_to_path(sevenn_name), spec, device, dtype)

    register_backend(spec, usage=spec, help=help, capabilities={"offline"})(load)


for _spec, (_sevenn_name, _help) in WHEEL_MODELS.items():
    _register_wheel_model(_spec, _sevenn_name, _help)


@register_backend(
    "sevennet",
    usage="sevennet:PATH",
    help="a SevenNet checkpoint file, e.g. your own fine-tune",
    capabilities={"offline"},
)
def _load_sevennet_file(argument: str, device: torch.device, dtype: torch.dtype) -> SevenNetBackend:
    if not argument:
        raise ModelLoadError("spec 'sevennet:PATH' needs a checkpoint path after the colon")
    if not os.path.isfile(argument):
        raise ModelLoadError(f"SevenNet checkpoint not found: {argument}")
    import_e3nn()
    return _load_checkpoint(argument, f"sevennet:{os.path.abspath(argument)}", device, dtype)


def _load_checkpoint(
    path: str, spec: str, device: torch.device, dtype: torch.dtype
) -> SevenNetBackend:
    from sevenn.util import model_from_checkpoint

    try:
        with warnings.catch_warnings():
            # TorchScript compilation inside e3nn warns about annotations; nothing to act on.
            warnings.simplefilter("ignore", UserWarning)
            model, config = model_from_checkpoint(path)
    except Exception as exc:  # sevenn raises bare exceptions of many kinds
        raise ModelLoadError(f"could not load SevenNet checkpoint {path}: {exc}") from exc
    return SevenNetBackend(model, config, spec).to(device=device, dtype=dtype)
