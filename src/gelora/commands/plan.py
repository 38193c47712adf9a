"""``gelora plan PROFILE``: LoRA ranks per block from an ID profile (GeLoRA), written as plan.json."""

from __future__ import annotations

import argparse

from gelora.cli_args import add_arguments, from_args
from gelora.options import PlanOptions


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="LoRA ranks per block from a profile.json")
    p.add_argument("profile", help="profile.json written by `gelora profile`")
    add_arguments(p, PlanOptions)
    p.add_argument("--target-modules", help="comma-separated module-name suffixes in each block (default: all linear)")
    p.add_argument("--model", help="model to plan for (default: the one recorded in the profile); it must have the "
                                   "profiled architecture: a copy or fine-tune of that model in another folder is fine")
    p.add_argument("--out", required=True, help="output folder for plan.json and plan.png; refused if it holds "
                                                "another profile.json than PROFILE")
    return p


def run(args: argparse.Namespace) -> int:
    from gelora.commands.outputs import check_out_folder, check_plan_folder
    from gelora.models import load_backbone
    from gelora.plan import plan_ranks
    from gelora.plots import plot_plan
    from gelora.profile import Profile

    options = from_args(PlanOptions, args)
    options.validate()
    targets = [t.strip() for t in args.target_modules.split(",") if t.strip()] if args.target_modules else None
    out = check_out_folder(args.out)
    profile = Profile.from_json(args.profile)
    check_plan_folder(out, args.profile)
    name = args.model or profile.model
    plan = plan_ranks(profile, load_backbone(name), options, target_modules=targets, model_name=name)
    plan.to_json(out / "plan.json")
    plot_plan(plan, profile, out / "plan.png")
    print(f"plan for {plan.model} from {args.profile}")
    print(plan.table())
    print(f"wrote {out / 'plan.json'} and {out / 'plan.png'}")
    return 0
