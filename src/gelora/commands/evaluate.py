"""``gelora evaluate RUN_DIR --data FILE``: the run's task metrics on new labelled rows."""

from __future__ import annotations

import argparse
import json

from gelora.cli_args import add_arguments, from_args
from gelora.train.trained import EvaluateOptions


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="score a finished training run on new labelled data",
        description="Reload the model a 'gelora train' run saved (its adapter with PEFT, or the full model) and "
                    "compute the run's task metrics on FILE (same columns and label names as the run's data).",
        usage="gelora evaluate RUN_DIR --data FILE [options]",
    )
    add_arguments(p, EvaluateOptions)
    return p


def run(args: argparse.Namespace) -> int:
    from gelora.train.trained import evaluate_run

    result = evaluate_run(from_args(EvaluateOptions, args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    unscored = result["info"].get("eval_dropped")
    note = f"; {unscored} not scored: no completion token within the run's --max-length" if unscored else ""
    rows = f"{result['rows']} row{'s' * (result['rows'] != 1)}"
    print(f"{result['method']} on {result['task']}, evaluated on {result['data']} ({rows}{note}):")
    width = max(map(len, result["metrics"]))
    for name, value in result["metrics"].items():
        shown = f"{value:.0f}" if name.endswith("total") else f"{value:.4f}"  # SQuAD's question counts
        print(f"  {name:<{width}}  {shown}")
    return 0
