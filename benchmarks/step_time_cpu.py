"""Step time of each method against uniform LoRA, measured fairly on a CPU: every model in one process, steps
interleaved (lora, gelora, adalora, ... then again), one torch thread, CPU time per step (what the step costs, not
how long it waited for a busy core).

Each model is built by the training runner (``gelora.train.methods.build_model``) and stepped by its
``training_step``: GeoLoRA's geometric step and AdaLoRA's reallocation are inside the timed step, as in
``gelora train``. GeLoRA's ranks come from ``--plan`` (e.g. a bench's ``plans/<task>/gelora.plan.json``).

Usage: PYTHONPATH=src python benchmarks/step_time_cpu.py --plan PLAN.json [--task sst2] [--steps 40]
           [--methods lora,gelora,adalora,geolora,gelora-geolora]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gelora.models import load_tokenizer
from gelora.train.config import TrainConfig
from gelora.train.methods import build_model
from gelora.train.runner import training_step
from gelora.train.tasks import load_task_data, train_loader


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
    from transformers import get_linear_schedule_with_warmup

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    tokenizer = load_tokenizer(args.model)
    total = args.steps + 3  # 3 warm-up steps each
    data = load_task_data(args.task, tokenizer, args.length, args.data_dir, total * args.batch_size, 16)
    batches = list(train_loader(data, args.batch_size, seed=0))[:total]
    runs = {}
    for method in args.methods.split(","):
        plan = args.plan if method in ("gelora", "gelora-geolora") else None
        config = TrainConfig(model=args.model, task=args.task, method=method, out=f"/tmp/step-time-{method}",
                             plan=plan, rank=args.rank, progress=False)
        built = build_model(config, data, tokenizer, total, accelerator)
        trainable = [p for p in built.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=2e-3)
        if built.integrator is not None:
            built.integrator.optimizer = optimizer
        scheduler = get_linear_schedule_with_warmup(optimizer, 0, total)
        runs[method] = (built, optimizer, scheduler, trainable, [])
        built.model.train()
    for step, batch in enumerate(batches):
        for built, optimizer, scheduler, trainable, times in runs.values():
            start = time.process_time()
            training_step(batch, built.model, built, optimizer, scheduler, accelerator, trainable, 1.0, step)
            if step >= 3:
                times.append(time.process_time() - start)
    lora = statistics.median(runs["lora"][-1]) if "lora" in runs else None
    print(f"| method | median CPU s/step | vs lora |  ({args.task}, batch {args.batch_size} x {args.length} tokens, "
          f"{args.steps} interleaved steps each, 1 thread)")
    print("|---|---:|---:|")
    for method, (*_, times) in runs.items():
        median = statistics.median(times)
        print(f"| {method} | {median:.4f} | " + (f"{median / lora:.3f}x |" if lora else "- |"))


if __name__ == "__main__":
    main()
