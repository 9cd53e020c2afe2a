#!/usr/bin/env bash
# GPU check of the feature maps (issue 21); not part of CI, needs a CUDA GPU, < 5 minutes.
#
#   bash benchmarks/gpu_check.sh [OUTDIR]      # from the repository root, venv active
#
# 1. `fntk data make emt-adsorbates` with 2,000 pool structures, then `fntk select` end to end
#    on CUDA (default options: joint map, coverage), timed.
# 2. Features on CUDA equal the CPU ones to float32 tolerance (embedding, default joint map,
#    sketch, exact) on 16 pool structures.
# 3. Structures per second on CUDA for energy+forces, the embedding and each joint variant
#    (PCA/sketch widths, exact map in reverse and in forward mode), and peak GPU memory.
# Commit OUTDIR/gpu_check.txt under benchmarks/results/ when run.
set -euo pipefail
OUT=${1:-gpu-check-output}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.txt"
export PYTHONUNBUFFERED=1
{
  echo "# gpu_check $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print('torch', torch.__version__)"

  fntk data make emt-adsorbates -o "$OUT/data" --overwrite \
    --size init=20 --size pool=2000 --size test_id=0 --size test_ood=0
  start=$(date +%s.%N)
  fntk select "$OUT/data/pool.xyz" --train "$OUT/data/init.xyz" -n 50 --device cuda \
    -o "$OUT/select" --overwrite
  end=$(date +%s.%N)
  python -c "print(f'fntk select, 2000 pool structures, CUDA: {$end - $start:.1f} s end to end')"

  python - "$OUT/data/pool.xyz" <<'PY'
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

warnings.simplefilter("ignore")
pool = ase.io.read(sys.argv[1], ":256")
cpu = load_backend("sevennet-0", device="cpu", dtype=torch.float32)
gpu = load_backend("sevennet-0", device="cuda", dtype=torch.float32)
variants = {
    "embedding": default_options("embedding", device="cuda"),
    "joint default": default_options("joint", device="cuda"),
    "joint pca d=4": default_options("joint", basis="pca", dim=4, device="cuda"),
    "joint pca d=12": default_options("joint", basis="pca", dim=12, device="cuda"),
    "joint sketch d=8": default_options("joint", basis="sketch", dim=8, device="cuda"),
    "joint sketch d=32": default_options("joint", basis="sketch", dim=32, device="cuda"),
    "joint exact d=128": default_options("joint", dim=128, device="cuda"),
}
print("\nCPU vs CUDA features, 16 pool structures (max |diff| / max |cpu|, float32):")
for name in ("embedding", "joint default", "joint sketch d=32", "joint exact d=128"):
    options = variants[name]
    on_gpu = build_feature_map(options)(gpu, pool[:16]).values
    on_cpu = build_feature_map(options.model_copy(update={"device": "cpu"}))(cpu, pool[:16])
    deviation = np.abs(on_gpu - on_cpu.values).max() / np.abs(on_cpu.values).max()
    print(f"  {name:20s} {deviation:.1e}  {'ok' if deviation < 1e-4 else 'TOO LARGE'}")


def timed(function):
    function()  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    function()
    torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**20


def energy_forces():
    options = default_options("joint")
    for batch in iter_batches(pool, options.batch_size, options.max_batch_atoms):
        gpu.energy_and_forces(gpu.build_graph(batch))


def exact(mode):
    options = default_options("joint")
    readout = linear_readout(gpu, "readout")
    root = readout_root(readout).to(device="cuda", dtype=torch.float32)

    def run():
        for batch in iter_batches(pool, options.batch_size, options.max_batch_atoms):
            graph = gpu.build_graph(batch)
            with reproducible_execution():
                if mode == "reverse":
                    projected_rows_reverse(gpu, graph, readout, root, True)
                else:
                    pooled, jacobian = hidden_jacobian_forward(gpu, graph, readout)
                    _ = pooled @ root, jacobian @ root

    return run


print(f"\nCUDA throughput, {len(pool)} pool structures, default batching:")
base, memory = timed(energy_forces)
print(f"  {'energy+forces':28s} {len(pool) / base:8.1f} structures/s  x1.0  peak {memory:.0f} MB")
rows = {name: (lambda o=o: build_feature_map(o)(gpu, pool)) for name, o in variants.items()}
rows["joint exact, all reverse mode"] = exact("reverse")
rows["joint exact, all forward mode"] = exact("forward")
for name, function in rows.items():
    seconds, memory = timed(function)
    print(
        f"  {name:28s} {len(pool) / seconds:8.1f} structures/s  x{seconds / base:.1f}"
        f"  peak {memory:.0f} MB"
    )
PY
} 2>&1 | tee "$LOG"
