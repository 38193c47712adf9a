"""``gelora bench``: GeLoRA vs LoRA, AdaLoRA, EVA and full fine-tuning on GLUE tasks at matched parameter budgets.

The matrix options come from ``BenchSettings`` fields (``gelora.cli_args``).
"""

from __future__ import annotations

import argparse

from gelora.cli_args import add_arguments, from_args

EPILOG = """\
methods: NAME[:KEY=VALUE,...], separated by commas (or ';').
  NAME is a method of the training runner ({methods}) or an alias:
    gelora     GeLoRA, rule=budget: the planned rank shape scaled to the parameters of uniform LoRA of rank R
    gelora-lb  GeLoRA's unscaled lower-bound plan (rule=lower-bound): fewer parameters, reported as they are
  options for every method:  rank=N  (instead of --budget-rank; e.g. lora:rank=2 next to gelora-lb)
                             lr=X    (instead of --lr; e.g. full:lr=5e-5 next to --lr 2e-3 for the adapters)
  options for methods trained from a GeLoRA plan ({planned}):
                             pooling=tokens|mean|first|last  offset=N  min_rank=N  rule=budget|lower-bound
                             estimator=twonn|gride  num_samples=N
  ablations are methods:     --methods gelora,gelora:pooling=mean,gelora:offset=0,gelora:offset=2,gelora-lb
  (defaults of the bench's GeLoRA: pooling=tokens, offset=1, min_rank=1, estimator=twonn)

matching budgets: LoRA and EVA use rank R on every adapted module, AdaLoRA ends at average rank R (from 1.5 R),
GeLoRA (budget) spends exactly LoRA's adapter parameters. Each task is profiled once per pooling and its time is
added to every GeLoRA run's wall time.

output: DIR/runs/<task>/<method>/seed<S>/ (runner folders), DIR/plans/<task>/ (profiles, plans, timings),
DIR/results.jsonl (one line per run), DIR/results.md (tables), DIR/pareto.png, DIR/bench.json (settings).
Re-running the same command skips finished runs and resumes interrupted ones; more tasks, methods or seeds may be
added to an existing DIR, other training settings need --overwrite (which deletes the old bench).
"""


def register(sub, name: str) -> argparse.ArgumentParser:
    from gelora.bench.settings import BenchSettings
    from gelora.train.methods import METHODS, planned_methods

    p = sub.add_parser(
        name,
        help="benchmark GeLoRA against LoRA, AdaLoRA, EVA and full fine-tuning at matched parameter budgets",
        description="Run every (task, method, seed) with matched parameter budgets; write tables and a plot.",
        epilog=EPILOG.format(methods=", ".join(METHODS), planned=", ".join(planned_methods())),
    )
    add_arguments(p, BenchSettings)
    p.add_argument("--out", required=True, help="bench folder")
    p.add_argument("--overwrite", action="store_true", help="delete the bench in --out and start over")
    p.add_argument("--report-only", action="store_true", help="train nothing; rewrite the tables from finished runs")
    return p


def run(args: argparse.Namespace) -> int:
    from gelora.bench import run_bench
    from gelora.bench.settings import BenchSettings

    settings = from_args(BenchSettings, args)
    outcome = run_bench(settings, args.out, overwrite=args.overwrite, report_only=args.report_only)
    print(f"{len(outcome['rows'])} runs in {args.out}/results.md, results.jsonl, pareto.png")
    if outcome["failures"]:
        print(f"{len(outcome['failures'])} run(s) failed (listed in results.md); re-run the command to retry them")
        return 1
    return 0
