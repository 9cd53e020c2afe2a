#!/usr/bin/env bash
# Acquisition variants of issue 20 (part 2) on one data set, ridge learner, 3 seeds: today's
# `coverage`, `coverage-density` (candidates: uniform sample + posterior-variance shortlist,
# each structure to cover weighted by its posterior variance),
# `lcmd`, and farthest-point sampling on the pretrained embedding (`fps`), each run with
# `random` in the same run (the ratio's baseline). SHORTLIST (M, default 100) is set below the
# pool size, as it is on real pools (M = 1000 of 10^4-10^6), so that the candidates matter;
# `coverage-all` runs today's default M = max(1000, 10 n), which on these pools is the whole
# pool, and computes the ridge design rows that every other run copies.
#
#   SHORTLIST=100 bash benchmarks/acquisition.sh DATA_DIR OUT_DIR [fntk bench options...]
set -euo pipefail
data=${1:?usage: acquisition.sh DATA_DIR OUT_DIR [fntk bench options...]}
out=${2:?usage: acquisition.sh DATA_DIR OUT_DIR [fntk bench options...]}
shift 2
export OMP_NUM_THREADS=1
tests=()
for file in "$data"/test_*.xyz; do
    split=$(basename "$file" .xyz)
    tests+=(--test "${split#test_}=$file")
done
common=(--init "$data/init.xyz" --pool "$data/pool.xyz" "${tests[@]}"
    --e0-reference "$data/e0_reference.xyz" --threads 1 --quiet "$@")
run() {  # run NAME [options...]
    local name=$1
    shift
    if [ -f "$out/$name/summary.md" ]; then
        echo "skip $name: finished (rerun with fntk bench ... -o $out/$name to resume more)"
        return
    fi
    mkdir -p "$out/$name"
    if [ "$name" != coverage-all ] && [ ! -d "$out/$name/features" ]; then
        cp -r "$out/coverage-all/features" "$out/$name/features"
    fi
    echo "$(date -u +%H:%M:%S) start $name: fntk bench ${common[*]} -o $out/$name $*"
    fntk bench "${common[@]}" -o "$out/$name" "$@"
    echo "$(date -u +%H:%M:%S) done $name"
}
m=${SHORTLIST:-100}
run coverage-all --methods random,committee,joint --selector coverage
run coverage-density --methods random,joint --selector coverage-density --shortlist "$m"
run coverage --methods random,joint --selector coverage --shortlist "$m"
run fps --methods random,fps
run lcmd --methods random,joint --selector lcmd --shortlist "$m"
