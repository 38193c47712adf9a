#!/usr/bin/env bash
# The CPU benchmark behind benchmarks/results_bench.md: MiniLM, 3 GLUE tasks on subsets, 3 seeds, 2 shared CPU cores.
# Resumable: re-running skips finished runs. Output: runs/bench-cpu/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-runs/bench-cpu}
DATA=${GELORA_DATA_DIR:-/work/shared/data/glue}
COMMON=(--model minilm --tasks sst2,mrpc,stsb --seeds 0,1,2 --budget-rank 8
        --epochs 1 --batch-size 32 --max-length 64 --max-train-samples 512 --max-eval-samples 400
        --profile-samples 512 --data-dir "$DATA" --out "$OUT")
# Main comparison: matched budgets (gelora = budget rule at R=8) plus the unscaled lower-bound plan.
PYTHONPATH=src "$PY" -m gelora bench "${COMMON[@]}" --methods lora,gelora,gelora-lb,adalora,eva,full
# Ablations of GeLoRA's free choices added to the same bench: finished runs are skipped, only new rows train.
PYTHONPATH=src "$PY" -m gelora bench "${COMMON[@]}" \
  --methods lora,gelora,gelora-lb,adalora,eva,full,gelora:pooling=mean,gelora:offset=0,gelora:offset=2
