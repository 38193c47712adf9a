#!/usr/bin/env bash
# make demo: GeLoRA end to end on the bundled MiniLM (all-MiniLM-L6-v2) and GLUE SST-2.
#   1. profile: intrinsic dimension at each of the 7 layer boundaries, with bootstrap intervals
#   2. plan:    LoRA ranks per block from the ID increases (lower-bound rule, then the budget rule at uniform rank 8)
#   3. train:   GeLoRA (budget plan) vs uniform LoRA rank 8, same parameters, same seed, side by side
# On CPU step 3 uses a subset (1,024 training rows, 32 tokens, 1 epoch; the whole demo took 70 s on 2 idle cores);
# with a GPU it runs 3 full epochs. Uses the local GLUE copy in $GELORA_DATA_DIR when set; outputs go to runs/demo/.
set -euo pipefail
OUT=runs/demo
TASK=sst2

echo "== gelora profile minilm --task glue/$TASK"
gelora profile minilm --task "glue/$TASK" --num-samples 300 --pooling tokens --bootstrap 100 --seed 0 \
    --out "$OUT/profile" --no-progress

echo
echo "== gelora plan (lower-bound rule: r_i = max(lb_i + 1, 1))"
gelora plan "$OUT/profile/profile.json" --rule lower-bound --out "$OUT/plan"

echo
echo "== gelora plan (budget rule: same shape, as many parameters as uniform LoRA rank 8)"
gelora plan "$OUT/profile/profile.json" --rule budget --budget-rank 8 --out "$OUT/plan-budget"

echo
if python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    SIZE=(--epochs 3 --max-length 128 --batch-size 32)
    echo "== gelora bench: GeLoRA vs LoRA on glue/$TASK (GPU: full training set, 3 epochs)"
else
    SIZE=(--epochs 1 --max-length 32 --batch-size 16 --max-train-samples 1024 --max-eval-samples 872)
    echo "== gelora bench: GeLoRA vs LoRA on glue/$TASK (CPU: first 1,024 training rows, 32 tokens, 1 epoch)"
fi
gelora bench --model minilm --tasks "$TASK" --methods lora,gelora --seeds 0 --budget-rank 8 --lr 2e-3 \
    --profile-samples 300 "${SIZE[@]}" --out "$OUT/bench"
cat "$OUT/bench/results.md"

echo
echo "demo outputs under $OUT/: profile/profile.png, plan/plan.png, plan-budget/plan.png, bench/results.md, bench/pareto.png"
