#!/usr/bin/env bash
# LoRA vs GeLoRA (budget rule, the parameters of LoRA r=8) on MiniLM for the two non-GLUE encoder tasks, seeds 0-2,
# at CPU size: extractive QA on the SQuAD v2 sample, and classification from a file (SST-2's rows as a user's file).
# Small on purpose (2 CPU cores): QA_ROWS questions (default 400) at QA_LENGTH tokens (192), 1,024 classification rows,
# one epoch each.
# Usage: [QA_ROWS=N QA_LENGTH=L] bash benchmarks/cpu_tasks.sh [OUT]   (then: python benchmarks/summarize_runs.py OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/cpu-tasks}
DATA=${DATA:-$(cd .. && pwd)/shared/data}
PY=${PY:-.venv/bin/python}
for seed in 0 1 2; do
  for method in lora gelora; do
    case $method in
      lora) opts=(--rank 8) ;;
      gelora) opts=(--rule budget --budget-rank 8 --num-samples 400) ;;
    esac
    $PY -m gelora train minilm --task squad_v2 --data "$DATA/squad_v2" --method $method "${opts[@]}" --seed $seed \
      --max-length "${QA_LENGTH:-192}" --max-train-samples "${QA_ROWS:-400}" --epochs 1 --batch-size 16 --no-progress --resume \
      --out "$OUT/squad_v2/$method/seed$seed"
    $PY -m gelora train minilm --task classify --data "$DATA/glue/sst2/train.jsonl" \
      --eval-data "$DATA/glue/sst2/validation.jsonl" --text-columns sentence --label-column label \
      --method $method "${opts[@]}" --seed $seed --max-length 64 --max-train-samples 1024 --epochs 1 \
      --batch-size 32 --no-progress --resume --out "$OUT/classify-sst2/$method/seed$seed"
  done
done
