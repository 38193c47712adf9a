#!/usr/bin/env bash
# Training throughput of 1 vs N GPUs (DDP through accelerate launch, bf16), MiniLM + LoRA on SST-2, same global
# batch. For a session with GPUs; the per-GPU batch is GLOBAL_BATCH / N.
# Usage: GELORA_DATA_DIR=../shared/data/glue bash benchmarks/gpu_distributed.sh [OUT_DIR] [N_GPUS]
set -euo pipefail
OUT=${1:-runs/bench-distributed-gpu}
N=${2:-$(python -c "import torch; print(torch.cuda.device_count())")}
MODEL=${MODEL:-minilm}
COMMON=("$MODEL" --task glue/sst2 --method lora --rank 8 --epochs 1 --max-train-samples 65536 --max-eval-samples 872
        --max-length 128 --max-steps 200 --checkpoint-every 100000 --no-progress --overwrite)
GLOBAL_BATCH=${GLOBAL_BATCH:-256}

# gelora train uses bf16 autocast whenever CUDA is present (Accelerator(mixed_precision="bf16")).
accelerate launch --num_processes 1 --num_machines 1 --mixed_precision bf16 --dynamo_backend no \
    -m gelora train "${COMMON[@]}" --batch-size "$GLOBAL_BATCH" --out "$OUT/1gpu"
rows=("1 GPU=$OUT/1gpu")
if [ "$N" -gt 1 ]; then
    accelerate launch --multi_gpu --num_processes "$N" --num_machines 1 --mixed_precision bf16 --dynamo_backend no \
        -m gelora train "${COMMON[@]}" --batch-size $((GLOBAL_BATCH / N)) \
        --out "$OUT/${N}gpu"
    rows+=("$N GPUs (DDP)=$OUT/${N}gpu")
fi
python "$(dirname "$0")/throughput_table.py" "${rows[@]}"

# The profile shards too: forward passes by batch, ID estimates by layer boundary. Compare forward_s/estimate_s.
for n in 1 "$N"; do
    multi=(); [ "$n" -gt 1 ] && multi=(--multi_gpu)
    accelerate launch "${multi[@]}" --num_processes "$n" --num_machines 1 --mixed_precision bf16 --dynamo_backend no \
        -m gelora profile "$MODEL" --task glue/sst2 --num-samples 4000 --bootstrap 20 --no-progress \
        --out "$OUT/profile-${n}gpu"
    python -c "import json,sys; p=json.load(open(sys.argv[1])); print(sys.argv[2], 'GPU(s):', p['timings'])" \
        "$OUT/profile-${n}gpu/profile.json" "$n"
done
