#!/usr/bin/env bash
# Real fine-tuning as the judge, on the user-like MD pool `xtb-md`: random, committee (K = 3)
# and the default `fntk select` configuration (`joint`, coverage), cumulative budgets 8,16,32
# after the 16 initial labels, 2 seeds, SevenNet-0 fine-tuned through every parameter (Adam,
# 30 steps of 8, reset to the pretrained weights every round, early stopping on 10% of the
# labelled set). The pool is a fixed random 250 of the 5,000 frames (--max-pool) and the
# id / balanced / ood tests every other frame of theirs (100 / 80 / 80; rare: all 100). This
# size is what a 2-core machine shared by 7 jobs (load ~17, ~0.075 of a core per process)
# could finish in about an hour; on a free core or a GPU use the whole data set and raise
# --seeds, --budgets (e.g. 16,32,64,128,256), --max-pool and --steps, and add
# --proxy-learner ridge to measure how well the ridge judge ranks the methods.
# One process per method (their round-0 models are identical: the same seeds on the CPU);
# benchmarks/merge_bench.py joins them and writes the summary.
#
#   bash benchmarks/active_learning_finetune.sh OUT_DIR [extra fntk bench options...]
set -euo pipefail
out=${1:?usage: active_learning_finetune.sh OUT_DIR [fntk bench options...]}
shift
export OMP_NUM_THREADS=1
here=$(cd "$(dirname "$0")" && pwd)
data="$out/data/xtb-md"
mkdir -p "$out/logs"
[ -f "$data/README.md" ] || /usr/bin/time -v fntk data make xtb-md -o "$data" \
    > "$out/logs/data-make.out" 2> "$out/logs/data-make.err"
# every other frame of the id, balanced and ood tests (the frames are in trajectory order,
# so the molecule mix is kept); all of rare
tests=(--test "rare=$data/test_rare.xyz")
for split in id balanced ood; do
    [ -f "$out/tests/$split.xyz" ] || python -c "import ase.io, sys, os
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
ase.io.write(sys.argv[2], ase.io.read(sys.argv[1], '::2'), format='extxyz')" \
        "$data/test_$split.xyz" "$out/tests/$split.xyz"
    tests+=(--test "$split=$out/tests/$split.xyz")
done
common=(--init "$data/init.xyz" --pool "$data/pool.xyz" "${tests[@]}"
    --e0-reference "$data/e0_reference.xyz" --max-pool 250 --budgets 8,16,32 --seeds 2
    --learner finetune --scope all --steps 30 --committee-size 3
    --pick-tag molecule --pick-tag kind --threads 1)
mkdir -p "$out/logs"
pids=()
for method in random joint committee; do
    # stderr: the progress log, then /usr/bin/time's wall time and peak memory
    /usr/bin/time -v fntk bench "${common[@]}" --methods "$method" -o "$out/xtb-md-$method" "$@" \
        > "$out/logs/xtb-md-$method.out" 2> "$out/logs/xtb-md-$method.err" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
python "$here/merge_bench.py" "$out/xtb-md" "$out/xtb-md-random" "$out/xtb-md-joint" \
    "$out/xtb-md-committee"
