"""``gelora bench``: GeLoRA vs LoRA, AdaLoRA, EVA and full fine-tuning on GLUE tasks at matched parameter budgets."""

from __future__ import annotations

import argparse

from gelora.errors import GeloraError

DEFAULTS = {"seeds": (0, 1, 2), "epochs": 3, "max_length": 128, "max_train_samples": None, "max_eval_samples": None}

EPILOG = """\
methods: NAME[:KEY=VALUE,...], separated by commas (or ';').
  NAME is a method of the training runner (gelora, lora, adalora, eva, full, geolora, gelora-geolora, ...) or an alias:
    gelora     GeLoRA, rule=budget: the planned rank shape scaled to the parameters of uniform LoRA of rank R
    gelora-lb  GeLoRA's unscaled lower-bound plan (rule=lower-bound): fewer parameters, reported as they are
  options for every method:  rank=N  (instead of --budget-rank; e.g. lora:rank=2 next to gelora-lb)
                             lr=X    (instead of --lr; e.g. full:lr=5e-5 next to --lr 2e-3 for the adapters)
  options for gelora, gelora-lb, gelora-geolora (GeoLoRA from the planned ranks):
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


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise GeloraError(f"--seeds must be comma-separated integers, e.g. 0,1,2 (got {text!r})") from None


def register(sub, name: str) -> argparse.ArgumentParser:
    from gelora.bench.methods import DEFAULT_METHODS

    p = sub.add_parser(
        name,
        help="benchmark GeLoRA against LoRA, AdaLoRA, EVA and full fine-tuning at matched parameter budgets",
        description="Run every (task, method, seed) with matched parameter budgets; write tables and a plot.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="Hub id, local model folder, or 'minilm'")
    p.add_argument("--tasks", default="rte,mrpc,stsb,cola,sst2", help="comma-separated GLUE tasks (rte,mrpc,...)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="method specs, see below")
    p.add_argument("--seeds", help="comma-separated integers (default 0,1,2; --quick: 0)")
    p.add_argument("--budget-rank", type=int, default=8, help="R: the LoRA rank every method's budget matches (8)")
    p.add_argument("--out", required=True, help="bench folder")
    p.add_argument("--overwrite", action="store_true", help="delete the bench in --out and start over")
    p.add_argument("--epochs", type=int, help="default 3 (--quick: 1)")
    p.add_argument("--lr", type=float, help="default: the runner's per method (5e-4 adapters, 2e-5 full)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, help="tokens per example (default 128; --quick: 32)")
    p.add_argument("--max-train-samples", type=int, help="first N training rows (default all; --quick: 64)")
    p.add_argument("--max-eval-samples", type=int, help="first N evaluation rows (default all; --quick: 64)")
    p.add_argument("--profile-samples", type=int, help="training texts GeLoRA profiles on (512; --quick: 64)")
    p.add_argument("--data-dir", help="local GLUE folder (default: $GELORA_DATA_DIR, else the Hub)")
    p.add_argument("--report-only", action="store_true", help="train nothing; rewrite the tables from finished runs")
    p.add_argument("--quick", action="store_true", help="smoke run: 64 train/64 eval rows, length 32, 1 epoch, seed 0")
    return p


def settings_from_args(args: argparse.Namespace):
    from gelora.bench.methods import parse_methods
    from gelora.bench.settings import QUICK, BenchSettings

    base = DEFAULTS | {"profile_samples": 512} | (QUICK if args.quick else {})
    given = {
        "seeds": _int_list(args.seeds) if args.seeds is not None else None,
        "epochs": args.epochs,
        "max_length": args.max_length,
        "max_train_samples": args.max_train_samples,
        "max_eval_samples": args.max_eval_samples,
        "profile_samples": args.profile_samples,
    }
    chosen = base | {k: v for k, v in given.items() if v is not None}
    return BenchSettings(
        model=args.model,
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        methods=tuple(spec.label for spec in parse_methods(args.methods)),
        budget_rank=args.budget_rank,
        lr=args.lr,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        quick=args.quick,
        **chosen,
    )


def run(args: argparse.Namespace) -> int:
    from gelora.bench import run_bench

    settings = settings_from_args(args)
    outcome = run_bench(settings, args.out, overwrite=args.overwrite, report_only=args.report_only)
    print(f"{len(outcome['rows'])} runs in {args.out}/results.md, results.jsonl, pareto.png")
    if outcome["failures"]:
        print(f"{len(outcome['failures'])} run(s) failed (listed in results.md); re-run the command to retry them")
        return 1
    return 0
