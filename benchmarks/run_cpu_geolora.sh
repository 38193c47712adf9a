#!/usr/bin/env bash
# GeoLoRA rows of the CPU benchmark (benchmarks/RESULTS.md): same settings as run_cpu_bench.sh, in one bench folder
# with its own LoRA and AdaLoRA runs so that step times are compared within one run. One torch thread.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/bench-geolora}
DATA=${GELORA_DATA_DIR:-../shared/data/glue}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PYTHONPATH=src "$PY" -m gelora bench --model minilm --seeds 0,1,2 --budget-rank 8 --epochs 1 --batch-size 16 \
    --max-length 32 --lr 2e-3 --max-train-samples 512 --max-eval-samples 256 --profile-samples 512 \
    --data-dir "$DATA" --out "$OUT" --tasks sst2,mrpc --methods lora,geolora,gelora-geolora,adalora
