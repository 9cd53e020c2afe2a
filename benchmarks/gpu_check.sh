#!/usr/bin/env bash
# GPU check of the feature maps (issue 21). Not part of CI: run by hand on a machine with one
# CUDA GPU, from the repository root with fntk installed; about 5 minutes.
#
#   bash benchmarks/gpu_check.sh                      # CUDA, full size
#   bash benchmarks/gpu_check.sh --device cpu --tiny  # dry run of the same steps on a CPU
#                                                     # (tiny sizes, 1 PCA reference tangent)
#
# 1. 2,000 unlabelled adsorbate-on-slab pool structures and 20 EMT-labelled training ones
#    (fntk.data.make_adsorbate_structures: no MD, seconds), then `fntk select` end to end on the
#    device (default options: joint map, coverage), timed.
# 2. Features on the device equal the CPU ones to float32 tolerance (embedding, default joint
#    map, sketch d = 32, PCA d = 16 on builtin-v2, exact map) on 16 pool structures.
# 3. Structures per second on the device for energy+forces, the embedding and each joint
#    variant, the exact map's force rows four ways (reverse mode one column at a time / all
#    columns in one batched backward; forward mode one tangent at a time / all tangents in one
#    vectorised pass, the library's), and peak device memory of each.
# The table goes to stdout and to $OUT/gpu_check.txt (OUT defaults to gpu-check-output); commit
# that file under benchmarks/results/ when run.
set -euo pipefail
DEVICE=cuda
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "usage: $0 [--device cuda|cpu] [--tiny]" >&2; exit 2 ;;
  esac
done
if [ "$TINY" = 1 ]; then N_POOL=12; N_PICK=3; N_EQUAL=3; N_TIMED=4; else
  N_POOL=2000; N_PICK=50; N_EQUAL=16; N_TIMED=256; fi
OUT=${OUT:-gpu-check-output}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.txt"
export PYTHONUNBUFFERED=1
HERE=$(cd "$(dirname "$0")" && pwd)

{
  echo "# gpu_check $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "device=$DEVICE tiny=$TINY"
  if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'"
  fi

  python - "$OUT" "$N_POOL" <<'PY'
import sys

from fntk.data import make_adsorbate_structures
from fntk.io import write_extxyz

out, n_pool = sys.argv[1], int(sys.argv[2])
write_extxyz(f"{out}/train.xyz", make_adsorbate_structures(20, seed=0))
adsorbates = ("H", "O", "OH", "CO", "N", "CH2")
pool = make_adsorbate_structures(n_pool, seed=1, adsorbates=adsorbates, label=False)
write_extxyz(f"{out}/pool.xyz", pool)
PY
  start=$(date +%s.%N)
  fntk select "$OUT/pool.xyz" --train "$OUT/train.xyz" -n "$N_PICK" --device "$DEVICE" \
    -o "$OUT/select" --overwrite --quiet
  end=$(date +%s.%N)
  python -c "print(f'fntk select, $N_POOL pool structures, $DEVICE: {$end - $start:.1f} s end to end')"

  python - "$OUT/pool.xyz" "$DEVICE" "$N_EQUAL" "$N_TIMED" "$HERE" "$TINY" <<'PY'
import sys
import time
import warnings

import ase.io
import numpy as np
import torch

from fntk.features import build_feature_map, default_options
from fntk.features.assembly import iter_batches
from fntk.features.basis import readout_root
from fntk.features.jacobian import hidden_jacobian_forward, projected_rows_reverse
from fntk.features.readout import linear_readout
from fntk.models import load_backend
from fntk.models.base import reproducible_execution

import fntk.features.basis

pool_file, device, n_equal, n_timed, here, tiny = sys.argv[1:7]
sys.path.insert(0, here)
from feature_cost import jacobian_forward_loop  # noqa: E402  (the per-tangent baseline)

warnings.simplefilter("ignore")
if tiny == "1":  # a dry run: one tangent for the PCA reference Grams (same code, less work)
    fntk.features.basis.REFERENCE_TANGENTS = 1
cuda = device == "cuda"
pool = ase.io.read(pool_file, f":{n_timed}")
cpu = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
model = load_backend("sevennet-0", device=device, dtype=torch.float32)
readout = linear_readout(model, "readout")
root = readout_root(readout).to(device=device, dtype=torch.float32)
variants = {
    "embedding": default_options("embedding", device=device),
    "joint default": default_options("joint", device=device),
    "joint sketch d=8": default_options("joint", basis="sketch", dim=8, device=device),
    "joint sketch d=32": default_options("joint", basis="sketch", dim=32, device=device),
    "joint pca v1 d=8": default_options("joint", basis="pca", dim=8, device=device),
    "joint pca v2 d=8": default_options(
        "joint", basis="pca", dim=8, reference="builtin-v2", device=device
    ),
    "joint pca v2 d=16": default_options(
        "joint", basis="pca", dim=16, reference="builtin-v2", device=device
    ),
    "joint exact d=128": default_options("joint", dim=128, device=device),
}

print(f"\nCPU vs {device} features, {n_equal} pool structures (max |diff| / max |cpu|, float32):")
failed = False
for name in ("embedding", "joint default", "joint sketch d=32", "joint pca v2 d=16",
             "joint exact d=128"):
    options = variants[name]
    on_device = build_feature_map(options)(model, pool[: int(n_equal)]).values
    on_cpu = build_feature_map(options.model_copy(update={"device": "cpu"}))(
        cpu, pool[: int(n_equal)]
    ).values
    deviation = np.abs(on_device - on_cpu).max() / np.abs(on_cpu).max()
    failed |= not deviation < 1e-4
    print(f"  {name:22s} {deviation:.1e}  {'ok' if deviation < 1e-4 else 'TOO LARGE'}")


def synchronize():
    if cuda:
        torch.cuda.synchronize()


def timed(function):
    function()  # warm-up (and a PCA basis fitted outside the timing)
    synchronize()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    function()
    synchronize()
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    return time.perf_counter() - start, memory


def batches():
    options = default_options("joint")
    for batch in iter_batches(pool, options.batch_size, options.max_batch_atoms):
        yield model.build_graph(batch)


def energy_forces():
    for graph in batches():
        model.energy_and_forces(graph)


def reverse_batched(graph):
    """All 128 columns in one batched backward (vmap over cotangents, is_grads_batched)."""
    positions = graph.positions.detach().requires_grad_(True)
    weights = readout.atom_weights(graph)[:, None]
    with torch.enable_grad():
        projected = (model(graph, positions).node_features * weights) @ root
        cotangents = torch.eye(projected.shape[1], dtype=projected.dtype, device=device)
        cotangents = cotangents[:, None, :].expand(-1, projected.shape[0], -1)
        (grads,) = torch.autograd.grad(
            projected, positions, cotangents, is_grads_batched=True
        )
    return grads


def exact(mode):
    def run():
        for graph in batches():
            with reproducible_execution():
                if mode == "reverse, column loop":
                    projected_rows_reverse(model, graph, readout, root, True)
                elif mode == "reverse, batched columns":
                    reverse_batched(graph)
                elif mode == "forward, tangent loop":
                    pooled, jacobian = jacobian_forward_loop(model, graph, readout)
                    _ = pooled @ root, jacobian @ root
                else:
                    pooled, jacobian = hidden_jacobian_forward(model, graph, readout)
                    _ = pooled @ root, jacobian @ root

    return run


rows = {"energy+forces": energy_forces}
rows.update({name: (lambda o=o: build_feature_map(o)(model, pool)) for name, o in variants.items()})
for mode in ("reverse, column loop", "reverse, batched columns", "forward, tangent loop",
             "forward, vectorised (library)"):
    rows[f"exact {mode}"] = exact(mode)
sizes = [len(a) for a in pool]
print(f"\n{device} throughput, {len(pool)} pool structures ({min(sizes)}-{max(sizes)} atoms), "
      "default batching:")
print(f"| {'map':38s} | structures/s | x E+F | peak MiB |")
print(f"|{'-' * 40}|--------------|-------|----------|")
base = None
for name, function in rows.items():
    seconds, memory = timed(function)
    base = seconds if base is None else base
    print(f"| {name:38s} | {len(pool) / seconds:12.1f} | {seconds / base:5.1f} | {memory:8.0f} |")
sys.exit(1 if failed else 0)
PY
} 2>&1 | tee "$LOG"
