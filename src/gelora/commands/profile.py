"""``gelora profile MODEL``: intrinsic dimension at every layer boundary of a model on task data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gelora.cli_args import add_arguments, from_args
from gelora.models import MODEL_HELP, stored_model_name
from gelora.options import ProfileOptions
from gelora.profile import DEFAULT_BOOTSTRAP


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="ID profile of a model: one intrinsic dimension per layer boundary")
    p.add_argument("model", help=MODEL_HELP)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="glue/<name>: cola, sst2, mrpc, stsb, qnli, rte, mnli, qqp")
    source.add_argument("--data", metavar="FILE", help="a .jsonl, .json or .csv file of texts (SFT data: also a "
                                                       "folder or a Hub dataset id, read at --split)")
    p.add_argument("--text-columns", help="with --data: the text column, or two comma-separated (a pair)")
    p.add_argument("--prompt-column", help="with --data: SFT data, profiled as 'train --task sft' sees it (chat "
                                           "template on prompt + completion); with --completion-column. Found "
                                           "without them: a 'messages' column, or 'prompt' + 'completion'")
    p.add_argument("--completion-column", help="with --data: the completion column of SFT data")
    p.add_argument("--data-dir", help="local GLUE folder (<dir>/<task>/train.jsonl); default $GELORA_DATA_DIR")
    p.add_argument("--split", default="train", help="split of the task to profile (default: train)")
    add_arguments(p, ProfileOptions, defaults={"bootstrap": DEFAULT_BOOTSTRAP})
    p.add_argument("--seed", type=int, default=0, help="seeds the text subset, token sampling and bootstrap (0; >= 0)")
    p.add_argument("--max-length", type=int, default=128,
                   help="truncation length in tokens, special tokens included (128)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (32)")
    p.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--out", required=True,
                   help="output folder for profile.json and profile.png; a plan.json/plan.png already there (made "
                        "from the profile this run replaces) is removed, so the folder's outputs stay one set")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_texts(args: argparse.Namespace, tokenizer) -> tuple[list[tuple[str, ...]], dict]:
    """Texts from ``--task`` or ``--data`` and a record of where they came from."""
    from gelora.data import load_file, load_task, task_spec, text_pairs
    from gelora.errors import GeloraError

    if args.data and not args.text_columns:
        sft = _sft_texts(args, tokenizer)
        if sft is not None:
            return sft
    if args.prompt_column or args.completion_column:
        raise GeloraError("--prompt-column/--completion-column name SFT columns of --data; with --task or "
                          "--text-columns drop them")

    if args.task:
        spec = task_spec(args.task)
        if args.text_columns:
            raise GeloraError(
                f"--text-columns only applies to --data; glue/{spec.name} reads its own columns "
                f"({', '.join(spec.text_columns)}): drop --text-columns"
            )
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
            f"--data needs one or two --text-columns (got {len(columns)}), or SFT columns (--prompt-column / "
            f"--completion-column, 'messages'); available: {', '.join(ds.column_names)}"
        )
    return text_pairs(ds, columns), {"file": str(Path(args.data).resolve()), "text_columns": list(columns)}


def _sft_texts(args: argparse.Namespace, tokenizer) -> tuple[list[tuple[str, ...]], dict] | None:
    """The texts ``gelora train --task sft`` profiles: prompt + completion after the chat template, as tokenised;
    None when no SFT columns are named and ``--data`` has none of its own (``messages``, or ``prompt`` +
    ``completion``)."""
    from gelora.data import load_split
    from gelora.errors import GeloraError
    from gelora.train.tasks.sft_data import detect_format, sft_columns, tokenize_sft

    where = f"{args.data} ({args.split})"
    try:
        rows = load_split(args.data, args.split)
        detect_format(rows.column_names, args.prompt_column, args.completion_column, where)
    except GeloraError:
        if args.prompt_column or args.completion_column:
            raise
        return None  # not SFT data: read as texts with --text-columns
    rows = sft_columns(rows, args.prompt_column, args.completion_column, where)
    texts = [(prompt + completion,) for prompt, completion in tokenize_sft(rows, tokenizer, args.max_length).texts]
    source = Path(args.data).expanduser()
    return texts, {"file": str(source.resolve()) if source.exists() else args.data, "split": args.split, "format": "sft"}


def run(args: argparse.Namespace) -> int:
    from gelora.commands.outputs import check_out_folder, remove_stale_plan
    from gelora.distributed import init_from_environment, is_main_process
    from gelora.models import load_backbone, load_tokenizer
    from gelora.plots import plot_profile
    from gelora.profile import check_profile_settings, profile_model, profile_texts

    # Everything that needs no model is checked first: a mistake costs a second, not the model load.
    options = from_args(ProfileOptions, args)
    check_profile_settings(options, seed=args.seed, batch_size=args.batch_size, device=args.device)
    out = check_out_folder(args.out)
    tokenizer = load_tokenizer(args.model)  # SFT texts are the chat template's
    texts, data = load_texts(args, tokenizer)
    profile_texts(tokenizer, texts, options, seed=args.seed, max_length=args.max_length)

    init_from_environment()  # under accelerate launch / torchrun: forward passes and estimates are sharded
    profile = profile_model(
        load_backbone(args.model),
        tokenizer,
        texts,
        options,
        seed=args.seed,
        max_length=args.max_length,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
        model_name=stored_model_name(args.model),  # absolute when local: `gelora plan` reloads it from anywhere
        data=data,
    )
    if not is_main_process():  # every process holds the whole profile; one writes it
        return 0
    removed = remove_stale_plan(out)
    profile.to_json(out / "profile.json")
    plot_profile(profile, out / "profile.png")
    t = profile.timings
    print(f"{profile.model} on {data.get('task') or data['file']}: {profile.data['n_texts']} texts, "
          f"{profile.n_points} points per boundary ({profile.pooling} pooling), {profile.estimator}, seed {profile.seed}")
    print(profile.table())
    for b in profile.boundaries:
        if b.id is None:
            print(f"gelora profile: warning: boundary {b.index} ({b.name}) has no ID: {b.reason}; `gelora plan` "
                  "gives it the nearest defined ID", file=sys.stderr)
    print(f"forward passes {t['forward_s']:.1f} s, ID estimation {t['estimate_s']:.1f} s")
    if removed:
        print(f"removed {', '.join(removed)} from {out}: made from the profile this run replaces")
    print(f"wrote {out / 'profile.json'} and {out / 'profile.png'}")
    return 0
