"""GeLoRA's own cost on an LLM, and how many texts its plan needs: SmolLM2 on GSM8K by default.

1. For each profile size (nested seeded subsets of the SFT task's training texts, after the chat template, exactly
   what ``gelora train --method gelora`` profiles): profile seconds (forward passes vs ID estimation), plan seconds
   for the budget rule and the lower-bound rule, the ranks, the ranks from the ends of the bootstrap intervals, and
   how many blocks change rank between consecutive sizes.
2. The share of GeLoRA's profile + plan in a whole SFT run: the median optimizer-step time of a few steps of the same
   run with ``--method lora`` (the runner's own ``median_step_seconds``) times the run's steps, against the profile
   and budget plan of each size. Wall seconds, and the process's CPU seconds (all its threads), which other jobs on
   shared cores inflate far less: the CPU share is the one to trust on a busy machine.
3. Figures of the profile and both plans at the largest size (``gelora.plots``), named after the model and the data
   folder (``smollm2_gsm8k_profile.png`` ...).

Usage: PYTHONPATH=src python benchmarks/llm_profile_cost.py [--model smollm2] [--data ../shared/data/gsm8k]
           [--sizes 50,100,200,300] [--bootstrap 100] [--budget-rank 8] [--max-length 128] [--batch-size 4]
           [--steps 60] [--timed-steps 3] [--seed 0] [--figures benchmarks/figures] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gelora.options import PlanOptions, ProfileOptions
from gelora.train.config import DataOptions, TrainConfig

TARGET_SHARE = 0.10  # the target for profile + plan time in a whole run


def train_config(args: argparse.Namespace, out: str, **overrides) -> TrainConfig:
    """The benchmark's SFT run (``gelora train MODEL --task sft --data DATA ...``), with ``overrides``."""
    data = DataOptions(data=args.data, prompt_column="question", completion_column="answer")
    settings = dict(model=args.model, task="sft", method="lora", out=out, batch_size=args.batch_size,
                    max_length=args.max_length, seed=args.seed, data_options=data, progress=False)
    return TrainConfig(**(settings | overrides))


def plan_options(budget_rank: int) -> dict[str, PlanOptions]:
    """The two rules measured: the budget rule at uniform LoRA's parameters, and the lower-bound rule's defaults."""
    return {"budget": PlanOptions(rule="budget", budget_rank=budget_rank), "lower-bound": PlanOptions()}


def changed_blocks(before: list[int], after: list[int]) -> int:
    """How many blocks have a different rank in ``after`` than in ``before``."""
    if len(before) != len(after):
        raise ValueError(f"plans of {len(before)} and {len(after)} blocks cannot be compared")
    return sum(a != b for a, b in zip(before, after))


def cost_share(gelora_seconds: float, step_seconds: float, steps: int) -> float:
    """GeLoRA's profile + plan seconds as a share of the whole run: that plus ``steps`` training steps."""
    return gelora_seconds / (gelora_seconds + step_seconds * steps)


def _with_cpu(fn, *args, **kwargs):
    """``fn``'s result and the CPU seconds this process (all its threads) spent in it."""
    start = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.process_time() - start


def measure_size(model, tokenizer, texts: list[tuple[str, ...]], num_samples: int, args) -> dict:
    """Profile ``num_samples`` texts and plan with every rule, as the ``gelora`` method does; seconds of each part."""
    from gelora.train.methods.gelora import plan_from_profile, timed_profile

    options = ProfileOptions(pooling="tokens", num_samples=num_samples, bootstrap=args.bootstrap)
    (profile, profile_seconds), profile_cpu = _with_cpu(
        timed_profile, model, tokenizer, texts, options, seed=args.seed, max_length=args.max_length,
        batch_size=args.batch_size, model_name=args.model,
        data={"task": f"sft ({Path(args.data).name})", "split": "train"},
    )
    plans = {rule: _with_cpu(plan_from_profile, profile, model, opts)
             for rule, opts in plan_options(args.budget_rank).items()}
    return {
        "num_samples": num_samples,
        "n_points": profile.n_points,
        "profile_seconds": profile_seconds,
        "profile_cpu_seconds": profile_cpu,
        **profile.timings,
        "dimensions": profile.dimensions,
        "profile": profile,
        "plans": {rule: plan for rule, ((plan, _), _) in plans.items()},
        "plan_seconds": {rule: seconds for rule, ((_, seconds), _) in plans.items()},
        "plan_cpu_seconds": {rule: cpu for rule, (_, cpu) in plans.items()},
    }


def gelora_seconds(row: dict) -> dict[str, float]:
    """Profile + budget plan of one size (what the benchmark's ``gelora`` run adds), wall and CPU seconds."""
    return {"wall": row["profile_seconds"] + row["plan_seconds"]["budget"],
            "cpu": row["profile_cpu_seconds"] + row["plan_cpu_seconds"]["budget"]}


def shares(row: dict, step_s: dict[str, float], steps: int) -> dict[str, float]:
    """``cost_share`` of one size's profile + budget plan in a run of ``steps`` steps, by wall and by CPU time."""
    spent = gelora_seconds(row)
    return {kind: cost_share(spent[kind], step_s[kind], steps) for kind in spent}


def step_seconds(args) -> dict[str, float]:
    """Median optimizer-step seconds of ``--timed-steps`` steps of the benchmark's run with uniform LoRA: wall (the
    runner's ``median_step_seconds``) and CPU (timed around the runner's ``training_step``)."""
    from gelora.train import runner

    cpu_seconds, step = [], runner.training_step

    def timed_step(*a, **k):
        loss, cpu = _with_cpu(step, *a, **k)
        cpu_seconds.append(cpu)
        return loss

    runner.training_step = timed_step
    try:
        with tempfile.TemporaryDirectory(prefix="llm-cost-") as out:
            metrics = runner.train(train_config(args, out, rank=args.budget_rank, max_steps=args.timed_steps,
                                                max_eval_samples=args.batch_size, eval_every_epoch=False))
    finally:
        runner.training_step = step
    return {"wall": metrics["median_step_seconds"], "cpu": statistics.median(cpu_seconds)}


def stability(rows: list[dict], rule: str) -> list[dict]:
    """Per size: the rule's ranks, its CI-end ranks, blocks changed since the previous size and vs the largest."""
    last = rows[-1]["plans"][rule].ranks
    out, previous = [], None
    for row in rows:
        plan = row["plans"][rule]
        out.append({
            "num_samples": row["num_samples"],
            "ranks": plan.ranks,
            "ci_ranks": plan.ci_ranks,
            "ci_ends_differ": changed_blocks(plan.ci_ranks["conservative"], plan.ci_ranks["liberal"]),
            "changed_vs_previous": None if previous is None else changed_blocks(previous, plan.ranks),
            "changed_vs_largest": changed_blocks(plan.ranks, last),
        })
        previous = plan.ranks
    return out


def _ranks(ranks: list[int]) -> str:
    return " ".join(map(str, ranks))


def cost_table(rows: list[dict], step_s: dict[str, float], args) -> list[str]:
    lines = [f"| texts | points per boundary | forward s | estimate s | profile s (CPU s) | plan s (budget / "
             f"lower-bound) | share of a {args.steps}-step run: wall (CPU) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        plan_s, share = row["plan_seconds"], shares(row, step_s, args.steps)
        lines.append(f"| {row['num_samples']} | {row['n_points']:,} | {row['forward_s']:.1f} | {row['estimate_s']:.1f}"
                     f" | {row['profile_seconds']:.1f} ({row['profile_cpu_seconds']:.1f}) | {plan_s['budget']:.2f} / "
                     f"{plan_s['lower-bound']:.2f} | {share['wall']:.1%} ({share['cpu']:.1%}) |")
    return lines


def stability_table(rows: list[dict], rule: str) -> list[str]:
    lines = [f"{rule} rule:", "", "| texts | ranks (block 0 ..) | conservative CI end | liberal CI end | blocks "
             "whose CI ends differ | changed vs previous size | changed vs largest |",
             "|---:|---|---|---|---:|---:|---:|"]
    for s in stability(rows, rule):
        previous = "-" if s["changed_vs_previous"] is None else s["changed_vs_previous"]
        lines.append(f"| {s['num_samples']} | {_ranks(s['ranks'])} | {_ranks(s['ci_ranks']['conservative'])} "
                     f"| {_ranks(s['ci_ranks']['liberal'])} | {s['ci_ends_differ']} | {previous} "
                     f"| {s['changed_vs_largest']} |")
    return lines


def save_figures(row: dict, folder: Path, prefix: str) -> list[Path]:
    """The profile and both plans of one size, as small PNGs named ``PREFIX_profile.png``, ``PREFIX_plan_RULE.png``."""
    from gelora.plots import plot_plan, plot_profile

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}_profile.png"]
    plot_profile(row["profile"], paths[0])
    for rule, plan in row["plans"].items():
        paths.append(folder / f"{prefix}_plan_{rule.replace('-', '_')}.png")
        plot_plan(plan, row["profile"], paths[-1])
    return paths


def report(rows: list[dict], step_s: dict[str, float], args, load: tuple[float, float]) -> list[str]:
    largest = rows[-1]
    spent, share = gelora_seconds(largest), shares(largest, step_s, args.steps)
    verdict = "within" if max(share.values()) <= TARGET_SHARE else "ABOVE"
    return [
        f"{args.model} on {args.data}: tokens pooling ({ProfileOptions().tokens_per_sequence} per text), TwoNN, "
        f"{args.bootstrap} bootstrap resamples, max_length {args.max_length}, batch {args.batch_size}, "
        f"seed {args.seed}; {platform.node()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
        f"load average {load[0]:.2f} before, {load[1]:.2f} after; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Training step (uniform LoRA r={args.budget_rank}, median of {args.timed_steps} steps): {step_s['wall']:.2f} "
        f"s wall ({step_s['cpu']:.2f} CPU s), so {args.steps} steps take {step_s['wall'] * args.steps:.0f} s "
        f"({step_s['cpu'] * args.steps:.0f} CPU s).",
        "",
        *cost_table(rows, step_s, args),
        "",
        f"At {largest['num_samples']} texts GeLoRA's profile + plan take {spent['wall']:.0f} s ({spent['cpu']:.0f} CPU "
        f"s), {share['wall']:.1%} ({share['cpu']:.1%}) of the {args.steps}-step run: {verdict} the {TARGET_SHARE:.0%} "
        "target.",
        "",
        *stability_table(rows, "budget"),
        "",
        *stability_table(rows, "lower-bound"),
    ]


def _json(rows: list[dict], step_s: dict[str, float], args) -> dict:
    keep = [{k: v for k, v in row.items() if k not in ("profile", "plans")} for row in rows]
    return {"args": vars(args), "step_seconds": step_s, "sizes": keep,
            "stability": {rule: stability(rows, rule) for rule in plan_options(args.budget_rank)}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))
    parser.add_argument("--sizes", default="50,100,200,300", help="profile sizes in texts, comma-separated")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--budget-rank", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of the whole run")
    parser.add_argument("--timed-steps", type=int, default=3, help="steps measured for the step time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", default=str(Path(__file__).resolve().parent / "figures"))
    parser.add_argument("--out", help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    return args


def main(argv: list[str] | None = None) -> None:
    from gelora.models import load_tokenizer
    from gelora.train.tasks import make_task

    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    step_s = step_seconds(args)
    with tempfile.TemporaryDirectory(prefix="llm-cost-") as out:
        task = make_task(train_config(args, out))
        tokenizer = load_tokenizer(args.model)
        texts = task.load(tokenizer).profile_texts  # the chat-templated training texts the gelora method profiles
        model = task.build_model()
    rows = [measure_size(model, tokenizer, texts, n, args) for n in args.sizes]
    lines = report(rows, step_s, args, (load_before, os.getloadavg()[0]))
    figures = save_figures(rows[-1], Path(args.figures), f"{Path(args.model).name}_{Path(args.data).name}")
    print("\n".join(lines + ["", "Figures: " + ", ".join(map(str, figures))]))
    if args.out:
        Path(args.out).write_text(json.dumps(_json(rows, step_s, args), indent=2))


if __name__ == "__main__":
    main()
