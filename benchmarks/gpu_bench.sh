#!/usr/bin/env bash
# The full benchmark on a GPU machine: MiniLM on cola, sst2, mrpc, stsb, rte (full train and validation splits),
# methods lora, gelora (budget R=8), gelora-lb, adalora, eva, full, geolora, gelora-geolora, plus GeLoRA's ablations, seeds 0, 1, 2.
#
# Needs (carried into the repository root): .carry/minilm (all-MiniLM-L6-v2 as a Transformers folder) and
# .carry/glue/<task>/{train,validation}.jsonl, and a Python with gelora's dependencies ($PY, default python).
# Writes $OUT/bench (results.md, results.jsonl, pareto.png, runs/, plans/) and $OUT/bench.log.
#
# The bench is resumable, so a machine with a time limit per command can run it in slices: stop it with
# `timeout` (BENCH_SECONDS, default: no limit), carry the previous $OUT/bench back in as .carry/bench and call
# this script again; finished runs are skipped and an interrupted one continues from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:?set OUT to the folder to write into}
BENCH="$OUT/bench"
mkdir -p "$OUT"
if [[ -d .carry/bench && ! -e "$BENCH" ]]; then
  cp -r .carry/bench "$BENCH"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt" || true
# .carry/minilm stores float16 weights, which Transformers 5 would train as they are: train a float32 copy (the same
# path on every call, so a resumed bench keeps its settings).
MODEL=/tmp/gelora-minilm-float32
PYTHONPATH=src "$PY" benchmarks/gpu_check.py float32 .carry/minilm "$MODEL"
METHODS=lora,gelora,gelora-lb,adalora,eva,full,geolora,gelora-geolora,gelora:pooling=mean,gelora:offset=0,gelora:offset=2
CMD=(env PYTHONPATH=src "$PY" -m gelora bench --model "$MODEL" --tasks rte,mrpc,stsb,cola,sst2
     --methods "$METHODS" --seeds 0,1,2 --budget-rank 8 --epochs 3 --batch-size 32 --max-length 128
     --profile-samples 1000 --data-dir .carry/glue --out "$BENCH")
if [[ -n "${BENCH_SECONDS:-}" ]]; then
  # SIGINT first: the runner's checkpoints are atomic, so a killed run resumes on the next call.
  timeout --signal=INT --kill-after=30 "$BENCH_SECONDS" "${CMD[@]}" 2>&1 | tee -a "$OUT/bench.log" || true
else
  "${CMD[@]}" 2>&1 | tee -a "$OUT/bench.log"
fi
