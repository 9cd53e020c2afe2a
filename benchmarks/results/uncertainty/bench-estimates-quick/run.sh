F=/work/main/.venv/bin/fntk
$F data make emt-adsorbates -o data --size init=4 --size pool=6 --size test_id=6 --size test_ood-ads=3 --size test_ood-cat=0 --size test_ood-both=0
ARGS="--init data/init.xyz --pool data/pool.xyz --test id=data/test_id.xyz --test ood=data/test_ood-ads.xyz --e0-reference data/e0_reference.xyz --quick --methods random --threads 1 --quiet"
$F bench $ARGS -o ridge
$F bench $ARGS --learner finetune -o finetune
