"""``gelora profile MODEL``: intrinsic dimension at every layer boundary of a model on task data."""

from __future__ import annotations

import argparse
from pathlib import Path

from gelora.measure import ESTIMATORS, POOLINGS


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="ID profile of a model: one intrinsic dimension per layer boundary")
    p.add_argument("model", help="Hub id, local folder, or 'minilm'")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="glue/<name>: cola, sst2, mrpc, stsb, qnli, rte, mnli, qqp")
    source.add_argument("--data", metavar="FILE", help="a .jsonl, .json or .csv file of texts")
    p.add_argument("--text-columns", help="with --data: the text column, or two comma-separated (a pair)")
    p.add_argument("--data-dir", help="local GLUE folder (<dir>/<task>/train.jsonl); default $GELORA_DATA_DIR")
    p.add_argument("--split", default="train", help="split of the task to profile (default: train)")
    p.add_argument("--num-samples", type=int, default=1000, help="texts used, a seeded random subset (1000)")
    p.add_argument("--pooling", choices=POOLINGS, default="tokens", help="points per text (default: tokens)")
    p.add_argument("--tokens-per-sequence", type=int, default=8, help="tokens pooling: tokens kept per text (8)")
    p.add_argument("--max-points", type=int, help="cap on points per boundary (default: no cap)")
    p.add_argument("--estimator", choices=ESTIMATORS, default="twonn")
    p.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for the 95%% CI (100; 0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=128, help="truncation length in tokens (128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--out", required=True, help="output folder for profile.json and profile.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_texts(args: argparse.Namespace) -> tuple[list[tuple[str, ...]], dict]:
    """Texts from ``--task`` or ``--data`` and a record of where they came from."""
    from gelora.data import load_file, load_task, task_spec, text_pairs
    from gelora.errors import GeloraError

    if args.task:
        spec = task_spec(args.task)
        ds = load_task(args.task, args.data_dir)
        if args.split not in ds:
            raise GeloraError(f"task {args.task} has no split {args.split!r}; choose one of {', '.join(ds)}")
        columns = spec.text_columns
        return text_pairs(ds[args.split], columns), {"task": f"glue/{spec.name}", "split": args.split,
                                                     "text_columns": list(columns)}
    columns = tuple(c.strip() for c in (args.text_columns or "").split(",") if c.strip())
    ds = load_file(args.data, columns)["train"]
    if not 1 <= len(columns) <= 2:
        raise GeloraError(
            f"--data needs one or two --text-columns (got {len(columns)}); available: {', '.join(ds.column_names)}"
        )
    return text_pairs(ds, columns), {"file": str(Path(args.data).resolve()), "text_columns": list(columns)}


def run(args: argparse.Namespace) -> int:
    from gelora.models import load_backbone, load_tokenizer
    from gelora.plots import plot_profile
    from gelora.profile import profile_model

    texts, data = load_texts(args)
    profile = profile_model(
        load_backbone(args.model),
        load_tokenizer(args.model),
        texts,
        pooling=args.pooling,
        estimator=args.estimator,
        bootstrap=args.bootstrap,
        seed=args.seed,
        num_samples=args.num_samples,
        max_length=args.max_length,
        batch_size=args.batch_size,
        tokens_per_sequence=args.tokens_per_sequence,
        max_points=args.max_points,
        device=args.device,
        progress=not args.no_progress,
        model_name=args.model,
        data=data,
    )
    out = Path(args.out)
    profile.to_json(out / "profile.json")
    plot_profile(profile, out / "profile.png")
    t = profile.timings
    print(f"{profile.model} on {data.get('task') or data['file']}: {profile.data['n_texts']} texts, "
          f"{profile.n_points} points per boundary ({profile.pooling} pooling), {profile.estimator}, seed {profile.seed}")
    print(profile.table())
    print(f"forward passes {t['forward_s']:.1f} s, ID estimation {t['estimate_s']:.1f} s")
    print(f"wrote {out / 'profile.json'} and {out / 'profile.png'}")
    return 0
