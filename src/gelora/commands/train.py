"""``gelora train MODEL --task ... --method ...``: fine-tune with GeLoRA, LoRA, AdaLoRA, EVA, GeoLoRA or fully.

Every option comes from a dataclass field: ``TrainConfig`` and the shared ``ProfileOptions`` / ``PlanOptions``.
"""

from __future__ import annotations

import argparse

from gelora.cli_args import add_arguments, from_args
from gelora.options import PlanOptions, ProfileOptions
from gelora.train.config import DataOptions, TrainConfig


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="fine-tune a model (gelora | lora | adalora | eva | full | geolora | gelora-geolora)",
        description="Fine-tune MODEL on a task with one method; writes metrics.json, the adapter and checkpoints.",
        usage="gelora train MODEL --task TASK --method METHOD --out DIR [options]",
    )
    add_arguments(p, TrainConfig)
    add_arguments(p.add_argument_group("your own data (classify, sft, qa)"), DataOptions)
    add_arguments(p.add_argument_group("GeLoRA profiling (gelora, gelora-geolora without --plan)"), ProfileOptions)
    add_arguments(p.add_argument_group("GeLoRA planning (gelora, gelora-geolora without --plan)"), PlanOptions)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return from_args(
        TrainConfig,
        args,
        data_options=from_args(DataOptions, args),
        profile_options=from_args(ProfileOptions, args),
        plan_options=from_args(PlanOptions, args),
    )


def run(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from gelora.train.runner import train

    metrics = train(config_from_args(args))
    if not PartialState().is_main_process:  # one summary line under torchrun / accelerate launch
        return 0
    best, final = metrics["best"], metrics["final"]
    name = metrics["metric"]
    print(
        f"{metrics['method']} on {metrics['task']}: {name} best {best[name]:.4f} (epoch {best['epoch']:.3g}), "
        f"final {final[name]:.4f}; {metrics['trainable_params']:,} trainable params; "
        f"{metrics['wall_seconds']:.0f} s; written to {args.out}"
    )
    cut = [_cut_rows(metrics, split) for split in ("train", "eval")]
    if any(cut):  # rows the model did not see whole: a user should not have to find this in metrics.json
        print(f"  at --max-length {args.max_length}: {', '.join(filter(None, cut))}")
    return 0


def _cut_rows(metrics: dict, split: str) -> str:
    """What ``--max-length`` did to ``split``'s rows (metrics.json's sft counts; a dropped row was cut too)."""
    cut, dropped = metrics.get(f"{split}_truncated"), metrics.get(f"{split}_dropped")
    if not cut:
        return ""
    name, lost = ("training", "dropped") if split == "train" else ("evaluation", "not scored")
    return f"{cut} {name} rows cut" + (f" ({dropped} of them {lost}: no answer token left)" if dropped else "")
