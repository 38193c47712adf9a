"""Step time of GeLoRA's plan vs uniform LoRA, measured fairly on a shared CPU: both models in one process, steps
interleaved (A B A B ...), one torch thread, CPU time per step (what the step costs, not how long it waited).

Usage: PYTHONPATH=src python benchmarks/step_time_cpu.py PLAN.json [--task sst2] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from peft import get_peft_model

from gelora.data import task_spec
from gelora.models import load_classifier
from gelora.plan import RankPlan, uniform_plan


def adapted(model_name: str, num_labels: int, plan: RankPlan | None, rank: int):
    base = load_classifier(model_name, num_labels)
    plan = plan or uniform_plan(base, rank)
    # Same lora_alpha as the runner: the scale does not change the cost of a step.
    return get_peft_model(base, plan.to_lora_config(task_type="SEQ_CLS", lora_alpha=16.0)).train()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("plan")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = task_spec(args.task)
    models = {
        "lora": adapted(args.model, spec.num_labels, None, args.rank),
        "gelora": adapted(args.model, spec.num_labels, RankPlan.from_json(args.plan), args.rank),
    }
    optims = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], 1e-4) for k, m in models.items()}
    x = torch.randint(1000, 20000, (args.batch_size, args.length))
    y = torch.randint(0, spec.num_labels, (args.batch_size,))
    cpu: dict[str, list[float]] = {k: [] for k in models}
    wall: dict[str, list[float]] = {k: [] for k in models}
    for step in range(args.steps + 3):  # 3 warm-up steps each
        for name, model in models.items():
            c, w = time.process_time(), time.perf_counter()
            model(input_ids=x, labels=y).loss.backward()
            optims[name].step()
            optims[name].zero_grad(set_to_none=True)
            if step >= 3:
                cpu[name].append(time.process_time() - c)
                wall[name].append(time.perf_counter() - w)
    for name in models:
        trainable = sum(p.numel() for p in models[name].parameters() if p.requires_grad)
        print(
            f"{name:7s} trainable {trainable:>9,}  median CPU s/step {statistics.median(cpu[name]):.4f}  "
            f"median wall s/step {statistics.median(wall[name]):.4f}"
        )
    ratio = statistics.median(cpu["gelora"]) / statistics.median(cpu["lora"])
    print(f"gelora / lora CPU time per step: {ratio:.3f}  ({args.steps} interleaved steps each)")


if __name__ == "__main__":
    main()
