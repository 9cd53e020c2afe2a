#!/usr/bin/env bash
# The molecular benchmark with SO3LR next to SevenNet-0, sized for a shared 2-core CPU: a reduced
# xtb-reactions set (init 20, pool 200, 50 + 50 test), then `fntk bench` on each model with the
# same settings (Adam fine-tuning of the readout group, 20 steps per round; 4 rounds of 10 from a
# fixed random 100 of the pool; 3 seeds; random, committee of 2, embedding, joint), then the
# pretrained models' force errors on the same files. SO3LR needs `pip install "fntk[so3lr]"`.
#
#   bash benchmarks/molecular_models.sh OUT_DIR [fntk bench options...]
#
# About 25 min (so3lr) + 75 min (sevennet-0) on one heavily loaded CPU thread. Rerunning resumes.
set -euo pipefail
out=${1:?usage: molecular_models.sh OUT_DIR [fntk bench options...]}
shift
export OMP_NUM_THREADS=1
data="$out/data"
[ -f "$data/README.md" ] || fntk data make xtb-reactions -o "$data" \
    --size init=20 --size pool=200 --size test_id=50 --size test_ood=50
common=(--init "$data/init.xyz" --pool "$data/pool.xyz" --test "id=$data/test_id.xyz"
    --test "ood=$data/test_ood.xyz" --e0-reference "$data/e0_reference.xyz"
    --learner finetune --scope readout --steps 20 --rounds 4 --batch 10 --seeds 3
    --methods random,committee,embedding,joint --committee-size 2 --max-pool 100
    --threads 1 --quiet --pick-tag kind)
for model in ${MODELS:-so3lr sevennet-0}; do
    fntk bench "${common[@]}" -m "$model" -o "$out/xtb-reactions-$model" "$@"
done
python "$(dirname "$0")/pretrained_errors.py" "id=$data/test_id.xyz" "ood=$data/test_ood.xyz" \
    "init=$data/init.xyz" --models sevennet-0,so3lr | tee "$out/pretrained_errors.md"
