#!/usr/bin/env bash
# The default active-learning benchmarks: make both data sets, run `fntk bench` with its
# defaults (3 seeds, 6 rounds of 10, ridge readout learner, d = 32, the `coverage` selector of
# `fntk select`) on each, once on the whole pool and once on a pool shifted away from the test
# splits (xtb-reactions: MD snapshots only, no bond stretches or H transfers; emt-adsorbates:
# Cu and Ag slabs only), and print the summary tables (random and committee are the baselines
# measured in the same run). Extra arguments go to every `fntk bench` call, e.g. `--dim 128`,
# `--selector lcmd` or `--quick`.
#
#   bash benchmarks/active_learning.sh OUT_DIR [fntk bench options...]
#
# About 40 minutes (emt-adsorbates, most of it the design rows, cached in OUT_DIR and shared by
# the shifted run) + 10 minutes (xtb-reactions) of one CPU thread. Rerunning resumes.
set -euo pipefail
out=${1:?usage: active_learning.sh OUT_DIR [fntk bench options...]}
shift
export OMP_NUM_THREADS=1
declare -A shift_filter=([emt-adsorbates]="info:metal=Cu,Ag" [xtb-reactions]="info:kind=md")
declare -A pick_tags=([emt-adsorbates]="--pick-tag adsorbate --pick-tag metal" [xtb-reactions]="--pick-tag kind")
for name in emt-adsorbates xtb-reactions; do
    data="$out/data/$name"
    [ -f "$data/README.md" ] || fntk data make "$name" -o "$data"
    tests=()
    for file in "$data"/test_*.xyz; do
        split=$(basename "$file" .xyz)
        tests+=(--test "${split#test_}=$file")
    done
    common=(--init "$data/init.xyz" --pool "$data/pool.xyz" "${tests[@]}"
        --e0-reference "$data/e0_reference.xyz" --threads 1 --quiet)
    # shellcheck disable=SC2206  # the tags are words
    tags=(${pick_tags[$name]})
    fntk bench "${common[@]}" "${tags[@]}" -o "$out/$name" "$@"
    mkdir -p "$out/$name-shift"
    # the shifted run reuses the design rows of the whole-pool run
    [ -d "$out/$name-shift/features" ] || cp -r "$out/$name/features" "$out/$name-shift/features"
    fntk bench "${common[@]}" "${tags[@]}" --pool-shift "${shift_filter[$name]}" \
        -o "$out/$name-shift" "$@"
done
