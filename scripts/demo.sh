#!/usr/bin/env bash
# make demo: GeLoRA on the bundled MiniLM (all-MiniLM-L6-v2) and GLUE RTE.
#   1. profile: intrinsic dimension at each of the 7 layer boundaries, with bootstrap intervals
#   2. plan:    LoRA ranks per block from the ID increases (lower-bound rule, then the budget rule at uniform rank 8)
# Uses the local GLUE copy in $GELORA_DATA_DIR when it is set; outputs go to runs/demo/.
set -euo pipefail
OUT=runs/demo
TASK=glue/rte

echo "== gelora profile minilm --task $TASK"
gelora profile minilm --task "$TASK" --num-samples 300 --pooling tokens --bootstrap 100 --seed 0 --out "$OUT/profile"

echo
echo "== gelora plan (lower-bound rule: r_i = max(lb_i + 1, 1))"
gelora plan "$OUT/profile/profile.json" --rule lower-bound --out "$OUT/plan"

echo
echo "== gelora plan (budget rule: same shape, as many parameters as uniform LoRA rank 8)"
gelora plan "$OUT/profile/profile.json" --rule budget --budget-rank 8 --out "$OUT/plan-budget"

echo
echo "demo outputs: $(ls "$OUT"/*/*.{json,png} | tr '\n' ' ')"
