"""Benchmark `gelora profile` on the bundled MiniLM and the GeLoRA plans it gives on five local GLUE tasks.

1. Time of a profile on 2,000 RTE training examples (tokens pooling, TwoNN, 100 bootstrap resamples), split into
   forward passes and ID estimation (target: estimation <= 25% of the forward passes).
2. Profiles with tokens and mean pooling on cola, sst2, mrpc, stsb, rte (``--num-samples`` texts each) and the plans
   from them: lower-bound rule (defaults) and budget rule matched to uniform rank 8.

Usage::

    PYTHONPATH=src GELORA_DATA_DIR=/work/shared/data/glue python benchmarks/bench_profile.py \
        [--num-samples 1000] [--part all|timing|tasks] [--out runs/bench_profile.md]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time

import torch

from gelora.data import load_task, task_spec, text_pairs
from gelora.io import atomic_write_text
from gelora.models import load_backbone, load_tokenizer
from gelora.plan import plan_ranks
from gelora.profile import profile_model

TASKS = ("cola", "sst2", "mrpc", "stsb", "rte")


def task_texts(task: str) -> list[tuple[str, ...]]:
    return text_pairs(load_task(f"glue/{task}")["train"], task_spec(task).text_columns)


def timing_section(model, tokenizer, seed: int) -> list[str]:
    t0 = time.perf_counter()
    profile = profile_model(model, tokenizer, task_texts("rte"), num_samples=2000, seed=seed, progress=False,
                            model_name="minilm", data={"task": "glue/rte"})
    total = time.perf_counter() - t0
    fwd, est = profile.timings["forward_s"], profile.timings["estimate_s"]
    return [
        "## Time of a profile: MiniLM, 2,000 RTE train examples",
        "",
        f"tokens pooling (8 per text), TwoNN, 100 bootstrap resamples, max_length 128, batch 32, seed {seed}: "
        f"{profile.n_points:,} points at each of {len(profile.boundaries)} boundaries.",
        "",
        "| part | seconds |",
        "|---|---|",
        f"| forward passes | {fwd:.1f} |",
        f"| ID estimation (7 boundaries, incl. bootstrap) | {est:.1f} |",
        f"| total (incl. sampling) | {total:.1f} |",
        "",
        f"ID estimation / forward passes = **{est / fwd:.1%}** (target <= 25%).",
        "",
        "```",
        profile.table(),
        "```",
        "",
    ]


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def tasks_section(model, tokenizer, num_samples: int, seed: int) -> list[str]:
    lines = [
        f"## Profiles and plans on five GLUE tasks ({num_samples} train texts each, seed {seed})",
        "",
        "IDs per boundary (0 = embeddings); plans: lower-bound rule with the defaults (offset 1, min_rank 1), and the "
        "budget rule matched to uniform rank 8 (331,776 LoRA parameters on MiniLM's 36 linear layers).",
        "",
        "| task | pooling | IDs h0..h6 | lb per block | lower-bound ranks (params) | conservative / liberal CI ranks "
        "| budget-8 ranks | forward s | ID s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        texts = task_texts(task)
        for pooling in ("tokens", "mean"):
            profile = profile_model(model, tokenizer, texts, pooling=pooling, num_samples=num_samples, seed=seed,
                                    progress=False, model_name="minilm", data={"task": f"glue/{task}"})
            lb_plan = plan_ranks(profile, model)
            budget = plan_ranks(profile, model, rule="budget", budget_rank=8)
            ids = " ".join(fmt(d) for d in profile.dimensions)
            ci = f"{lb_plan.ci_ranks['conservative']} / {lb_plan.ci_ranks['liberal']}"
            lines.append(
                f"| {task} | {pooling} | {ids} | {[b.lb for b in lb_plan.blocks]} | {lb_plan.ranks} "
                f"({lb_plan.total_params:,}) | {ci} | {budget.ranks} | {profile.timings['forward_s']:.0f} "
                f"| {profile.timings['estimate_s']:.1f} |"
            )
            print(lines[-1], flush=True)
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("all", "timing", "tasks"), default="all", help="which section(s) to run")
    parser.add_argument("--out", default="runs/bench_profile.md", help="markdown report (RESULTS.md quotes it)")
    args = parser.parse_args()

    model, tokenizer = load_backbone("minilm"), load_tokenizer("minilm")
    header = [
        "# gelora profile / plan: measured numbers",
        "",
        f"Command: `PYTHONPATH=src GELORA_DATA_DIR=/work/shared/data/glue python {' '.join(sys.argv)}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, no GPU; "
        f"torch {torch.__version__}. Date: {datetime.date.today().isoformat()}. The CPU is shared with other jobs, "
        "so absolute times vary by tens of percent between runs; the ratios are steadier.",
        "",
    ]
    body = []
    if args.part in ("all", "timing"):
        body += timing_section(model, tokenizer, args.seed)
        print("\n".join(body), flush=True)
    if args.part in ("all", "tasks"):
        body += tasks_section(model, tokenizer, args.num_samples, args.seed)
    atomic_write_text(args.out, "\n".join(header + body))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
