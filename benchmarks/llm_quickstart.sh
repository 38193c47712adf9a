#!/usr/bin/env bash
# README's "LLM quick start", end to end and timed: GeLoRA on SmolLM2 + GSM8K (profile and plan inside `train`),
# a re-plan from the saved profile, evaluation on the whole GSM8K test file, answers to a few new questions.
#
# Usage: bash benchmarks/llm_quickstart.sh OUT_DIR
#   MODEL (smollm2), DATA (../shared/data/gsm8k), STEPS (60), PROFILE_TEXTS (100), PREDICT_ROWS (8) override sizes;
#   the tiny test model and data make a dry run: MODEL=tests/.../model DATA=.../data STEPS=2 ...
# Writes OUT_DIR/times.tsv (step, wall seconds) and each step's outputs beside it.
set -euo pipefail
OUT=${1:?usage: bash benchmarks/llm_quickstart.sh OUT_DIR}
MODEL=${MODEL:-smollm2}
DATA=${DATA:-../shared/data/gsm8k}
STEPS=${STEPS:-60}
PROFILE_TEXTS=${PROFILE_TEXTS:-100}
PREDICT_ROWS=${PREDICT_ROWS:-8}
GELORA=${GELORA:-gelora}  # e.g. "python -m gelora"; word-split on purpose
mkdir -p "$OUT"
: > "$OUT/times.tsv"

timed() {  # timed NAME COMMAND...: run it, append "NAME<TAB>seconds" to times.tsv
    local name=$1 start=$EPOCHREALTIME
    shift
    "$@"
    awk -v name="$name" -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%s\t%.1f\n", name, b - a }' >> "$OUT/times.tsv"
}

timed "train (gelora: profile + plan + train + eval)" \
    $GELORA train "$MODEL" --task sft --data "$DATA" --prompt-column question --completion-column answer \
    --method gelora --rule budget --budget-rank 8 --num-samples "$PROFILE_TEXTS" \
    --max-length 128 --batch-size 4 --max-steps "$STEPS" --max-eval-samples 200 \
    --eval-generate 20 --eval-batch-size 20 --no-progress --overwrite --out "$OUT/gsm8k-gelora"
timed "plan (lower-bound rule, from the saved profile)" \
    $GELORA plan "$OUT/gsm8k-gelora/profile.json" --rule lower-bound --out "$OUT/plan-lb"
timed "evaluate (whole test file)" \
    $GELORA evaluate "$OUT/gsm8k-gelora" --data "$DATA/test.jsonl" --batch-size 50 --json > "$OUT/evaluate.json"
head -n "$PREDICT_ROWS" "$DATA/test.jsonl" | python3 -c "
import json, sys
for line in sys.stdin: print(json.dumps({'question': json.loads(line)['question']}))" > "$OUT/questions.jsonl"
timed "predict ($PREDICT_ROWS questions)" \
    $GELORA predict "$OUT/gsm8k-gelora" --data "$OUT/questions.jsonl" --batch-size "$PREDICT_ROWS" \
    --out "$OUT/answers.jsonl"
awk -F'\t' '{ total += $2; print } END { printf "total\t%.1f\n", total }' "$OUT/times.tsv"
