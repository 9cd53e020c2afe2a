#!/usr/bin/env bash
# Shifted pool with --target (issue 20, part 2): xtb-reactions with the pool restricted to MD
# snapshots (`--pool-shift info:kind=md`: no bond stretches or H transfers) while the tests hold
# every kind; the target is TARGET_FILE, unlabelled structures drawn like the test set but
# independently of it (`fntk data make xtb-reactions --seed 1`, its test_id split). Runs, each
# with random in the same run: coverage without target, then coverage and coverage-density
# covering the target. Ridge learner, 3 seeds; the design rows come from
# FEATURES (a feature cache of a whole-pool run on the same data).
#
#   SHORTLIST=100 bash benchmarks/acquisition_target.sh DATA_DIR TARGET_FILE FEATURES OUT_DIR
set -euo pipefail
data=${1:?usage: acquisition_target.sh DATA_DIR TARGET_FILE FEATURES OUT_DIR}
target=${2:?usage}
features=${3:?usage}
out=${4:?usage}
shift 4
export OMP_NUM_THREADS=1
m=${SHORTLIST:-100}
tests=()
for file in "$data"/test_*.xyz; do
    split=$(basename "$file" .xyz)
    tests+=(--test "${split#test_}=$file")
done
common=(--init "$data/init.xyz" --pool "$data/pool.xyz" "${tests[@]}"
    --e0-reference "$data/e0_reference.xyz" --threads 1 --quiet
    --pool-shift info:kind=md --shortlist "$m" "$@")
run() {  # run NAME [options...]
    local name=$1
    shift
    if [ -f "$out/$name/summary.md" ]; then
        echo "skip $name: finished"
        return
    fi
    mkdir -p "$out/$name"
    [ -d "$out/$name/features" ] || cp -r "$features" "$out/$name/features"
    echo "$(date -u +%H:%M:%S) start $name: fntk bench ${common[*]} -o $out/$name $*"
    fntk bench "${common[@]}" -o "$out/$name" "$@"
    echo "$(date -u +%H:%M:%S) done $name"
}
run coverage-density-target --methods random,joint --selector coverage-density --target "$target"
run coverage-target --methods random,joint --selector coverage --target "$target"
run coverage --methods random,joint --selector coverage
