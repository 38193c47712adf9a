"""``gelora predict RUN_DIR --data FILE --out preds.jsonl``: a finished run's outputs for rows without labels."""

from __future__ import annotations

import argparse

from gelora.cli_args import add_arguments, from_args
from gelora.train.trained import PredictOptions


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="predict with a finished training run (labels, answers or generations) into a .jsonl file",
        description="Reload the model a 'gelora train' run saved and write one JSON line per row of FILE, in order: "
                    "classification {label, scores}, regression {value}, QA {id, answer}, SFT {prompt, generated}. "
                    "FILE needs the input columns only (no labels or answers).",
        usage="gelora predict RUN_DIR --data FILE --out PREDS.jsonl [options]",
    )
    add_arguments(p, PredictOptions)
    return p


def run(args: argparse.Namespace) -> int:
    from gelora.train.trained import predict_run

    rows = predict_run(from_args(PredictOptions, args))
    print(f"wrote {len(rows)} prediction{'s' * (len(rows) != 1)} to {args.out}")
    return 0
