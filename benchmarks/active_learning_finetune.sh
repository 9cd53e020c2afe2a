#!/usr/bin/env bash
# Real fine-tuning as the judge (issue 20): random, the default `fntk select` configuration
# (`joint` with `coverage`) and, where METHODS says so, the committee, on one of the data sets
# of `fntk data make` (xtb-md: the user-like MD pool; xtb-reactions; emt-adsorbates).
# SevenNet-0 is fine-tuned through every parameter (Adam, STEPS steps of 8, reset to the
# pretrained weights every round, early stopping on 10% of the labelled set), SEEDS seeds,
# cumulative BUDGETS of pool picks after the initial labels, a fixed random MAX_POOL of the
# pool (--max-pool). xtb-md and xtb-reactions are tested on every other frame of their
# trajectory-ordered test splits (the molecule mix is kept), xtb-md's rare split whole.
# One process per method (their round-0 models are identical: the same seeds on the CPU);
# benchmarks/merge_bench.py joins them into OUT_DIR/DATASET and writes the summary.
#
#   SEEDS=3 BUDGETS=16,32,64,128 MAX_POOL=1000 STEPS=60 METHODS="random joint committee" \
#       bash benchmarks/active_learning_finetune.sh OUT_DIR DATASET [fntk bench options...]
#
# The data set is made under OUT_DIR/data/DATASET unless it is there already. On a GPU raise
# SEEDS, BUDGETS (e.g. 16,32,64,128,256), MAX_POOL and STEPS, and add --proxy-learner ridge to
# measure how well the ridge judge ranks the methods.
set -euo pipefail
out=${1:?usage: active_learning_finetune.sh OUT_DIR DATASET [fntk bench options...]}
name=${2:?usage: active_learning_finetune.sh OUT_DIR DATASET [fntk bench options...]}
shift 2
seeds=${SEEDS:-3}
budgets=${BUDGETS:-16,32,64,128}
max_pool=${MAX_POOL:-1000}
steps=${STEPS:-60}
read -r -a methods <<< "${METHODS:-random joint committee}"
export OMP_NUM_THREADS=1
here=$(cd "$(dirname "$0")" && pwd)
data="$out/data/$name"
mkdir -p "$out/logs"
[ -f "$data/README.md" ] || /usr/bin/time -v fntk data make "$name" -o "$data" \
    > "$out/logs/data-$name.out" 2> "$out/logs/data-$name.err"
declare -A pick_tags=([xtb-md]="molecule kind" [xtb-reactions]="kind"
    [emt-adsorbates]="adsorbate metal")
declare -A halved=([xtb-md]="id balanced ood" [xtb-reactions]="id ood" [emt-adsorbates]="")
tests=()
for file in "$data"/test_*.xyz; do
    split=$(basename "$file" .xyz)
    split=${split#test_}
    if [[ " ${halved[$name]} " == *" $split "* ]]; then
        half="$out/tests/$name/$split.xyz"
        [ -f "$half" ] || python -c "import ase.io, sys, os
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
ase.io.write(sys.argv[2], ase.io.read(sys.argv[1], '::2'), format='extxyz')" "$file" "$half"
        file=$half
    fi
    tests+=(--test "$split=$file")
done
tags=()
for tag in ${pick_tags[$name]}; do tags+=(--pick-tag "$tag"); done
common=(--init "$data/init.xyz" --pool "$data/pool.xyz" "${tests[@]}"
    --e0-reference "$data/e0_reference.xyz" --max-pool "$max_pool" --budgets "$budgets"
    --seeds "$seeds" --learner finetune --scope all --steps "$steps" --committee-size 3
    "${tags[@]}" --threads 1)
pids=()
runs=()
for method in "${methods[@]}"; do
    # stderr: the progress log, then /usr/bin/time's wall time and peak memory
    /usr/bin/time -v fntk bench "${common[@]}" --methods "$method" -o "$out/$name-$method" "$@" \
        > "$out/logs/$name-$method.out" 2> "$out/logs/$name-$method.err" &
    pids+=($!)
    runs+=("$out/$name-$method")
done
for pid in "${pids[@]}"; do wait "$pid"; done
python "$here/merge_bench.py" "$out/$name" "${runs[@]}"
