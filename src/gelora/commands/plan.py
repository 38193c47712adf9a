"""``gelora plan PROFILE``: LoRA ranks per block from an ID profile (GeLoRA), written as plan.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from gelora.plan.rank_plan import DEFAULT_MIN_RANK, DEFAULT_OFFSET, RULES


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="LoRA ranks per block from a profile.json")
    p.add_argument("profile", help="profile.json written by `gelora profile`")
    p.add_argument("--rule", choices=RULES, default="lower-bound",
                   help="lower-bound: r = max(lb + offset, min_rank); budget: that shape scaled to uniform rank R")
    p.add_argument("--offset", type=int, default=DEFAULT_OFFSET, help=f"added to each lower bound ({DEFAULT_OFFSET})")
    p.add_argument("--min-rank", type=int, default=DEFAULT_MIN_RANK,
                   help=f"smallest rank; 0 lets blocks go without an adapter ({DEFAULT_MIN_RANK})")
    p.add_argument("--budget-rank", type=int, help="budget rule: match uniform LoRA of this rank in parameters")
    p.add_argument("--target-modules", help="comma-separated module-name suffixes in each block (default: all linear)")
    p.add_argument("--model", help="model to plan for (default: the one recorded in the profile)")
    p.add_argument("--out", required=True, help="output folder for plan.json and plan.png")
    return p


def run(args: argparse.Namespace) -> int:
    from gelora.plan import plan_ranks
    from gelora.plots import plot_plan
    from gelora.profile import Profile

    profile = Profile.from_json(args.profile)
    targets = [t.strip() for t in args.target_modules.split(",") if t.strip()] if args.target_modules else None
    plan = plan_ranks(
        profile,
        args.model or profile.model,
        rule=args.rule,
        offset=args.offset,
        min_rank=args.min_rank,
        budget_rank=args.budget_rank,
        target_modules=targets,
    )
    out = Path(args.out)
    plan.to_json(out / "plan.json")
    plot_plan(plan, profile, out / "plan.png")
    print(f"plan for {plan.model} from {args.profile}")
    print(plan.table())
    print(f"wrote {out / 'plan.json'} and {out / 'plan.png'}")
    return 0
