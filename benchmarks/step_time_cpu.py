"""Step time of each method against uniform LoRA, measured fairly on a CPU: every model in one process, steps
interleaved (lora, gelora, adalora, ... then again), one torch thread, CPU time per step (what the step costs, not
how long it waited for a busy core).

Each run is set up by the training runner (``gelora.train.runner.setup``) and stepped by its ``training_step``: GeoLoRA's geometric step and AdaLoRA's reallocation are inside the timed step, as in
``gelora train``. GeLoRA's ranks come from ``--plan`` (e.g. a bench's ``plans/<task>/gelora.plan.json``).

Usage: PYTHONPATH=src python benchmarks/step_time_cpu.py --plan PLAN.json [--task sst2] [--steps 40]
           [--methods lora,gelora,adalora,geolora,gelora-geolora]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gelora.train.config import TrainConfig
from gelora.train.loaders import train_loader
from gelora.train.methods import method_class
from gelora.train.runner import setup, training_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="GeLoRA plan.json for gelora and gelora-geolora")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--methods", default="lora,gelora,adalora,geolora,gelora-geolora")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    from accelerate import Accelerator

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    total = args.steps + 3  # 3 warm-up steps each
    runs = {}
    for method in args.methods.split(","):
        uses_plan = method_class(method).uses_plan
        config = TrainConfig(model=args.model, task=args.task, method=method, out=f"/tmp/step-time-{method}",
                             plan=args.plan if uses_plan else None, rank=None if uses_plan else args.rank,
                             lr=2e-3, warmup_ratio=0.0, max_length=args.length, batch_size=args.batch_size,
                             max_train_samples=total * args.batch_size, max_eval_samples=16, data_dir=args.data_dir,
                             epochs=1, progress=False)
        runs[method] = (setup(config, accelerator), [])
    batches = list(train_loader(next(iter(runs.values()))[0].data, args.batch_size, seed=0))[:total]
    for step, batch in enumerate(batches):
        for run, times in runs.values():
            start = time.process_time()
            training_step(batch, run, step)
            if step >= 3:
                times.append(time.process_time() - start)
    lora = statistics.median(runs["lora"][1]) if "lora" in runs else None
    print(f"| method | median CPU s/step | vs lora |  ({args.task}, batch {args.batch_size} x {args.length} tokens, "
          f"{args.steps} interleaved steps each, 1 thread)")
    print("|---|---:|---:|")
    for method, (_, times) in runs.items():
        median = statistics.median(times)
        print(f"| {method} | {median:.4f} | " + (f"{median / lora:.3f}x |" if lora else "- |"))


if __name__ == "__main__":
    main()
