#!/usr/bin/env bash
# Training throughput of 1 vs 2 CPU processes (gloo) on MiniLM, LoRA, a small SST-2 subset, same global batch.
# Usage: GELORA_DATA_DIR=../shared/data/glue bash benchmarks/cpu_distributed.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-runs/bench-distributed-cpu}
COMMON=(minilm --task glue/sst2 --method lora --rank 8 --epochs 1 --max-train-samples 512 --max-eval-samples 64
        --max-length 64 --max-steps 24 --checkpoint-every 1000 --no-progress --overwrite)
GLOBAL_BATCH=16

# 1 process on both cores, 1 process on one core (the per-core baseline), 2 processes on one core each.
OMP_NUM_THREADS=2 python -m gelora train "${COMMON[@]}" --batch-size $GLOBAL_BATCH --out "$OUT/1proc-2threads"
OMP_NUM_THREADS=1 python -m gelora train "${COMMON[@]}" --batch-size $GLOBAL_BATCH --out "$OUT/1proc-1thread"
OMP_NUM_THREADS=1 python -m torch.distributed.run --nproc_per_node 2 -m gelora train "${COMMON[@]}" \
    --batch-size $((GLOBAL_BATCH / 2)) --out "$OUT/2proc-1thread"

python "$(dirname "$0")/throughput_table.py" \
    "1 process, 2 threads=$OUT/1proc-2threads" \
    "1 process, 1 thread=$OUT/1proc-1thread" \
    "2 processes (gloo), 1 thread each=$OUT/2proc-1thread"
