#!/usr/bin/env bash
# The default active-learning benchmarks: make both data sets, run `fntk bench` with its
# defaults (3 seeds, 6 rounds of 10, ridge readout learner, d = 32) on each, and print the
# summary tables (random and committee are the baselines measured in the same run).
# Extra arguments go to every `fntk bench` call, e.g. `--dim 128` or `--quick`.
#
#   bash benchmarks/active_learning.sh OUT_DIR [fntk bench options...]
#
# About 40 minutes (emt-adsorbates) + 5 minutes (xtb-reactions) of one CPU thread; the two
# runs are independent and can go on two cores at once. Rerunning resumes.
set -euo pipefail
out=${1:?usage: active_learning.sh OUT_DIR [fntk bench options...]}
shift
export OMP_NUM_THREADS=1
for name in emt-adsorbates xtb-reactions; do
    data="$out/data/$name"
    [ -f "$data/README.md" ] || fntk data make "$name" -o "$data"
    tests=()
    for file in "$data"/test_*.xyz; do
        split=$(basename "$file" .xyz)
        tests+=(--test "${split#test_}=$file")
    done
    fntk bench --init "$data/init.xyz" --pool "$data/pool.xyz" "${tests[@]}" \
        --e0-reference "$data/e0_reference.xyz" --threads 1 --quiet -o "$out/$name" "$@"
done
