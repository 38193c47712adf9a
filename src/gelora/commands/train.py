"""``gelora train MODEL --task glue/<name> --method ...``: fine-tune with GeLoRA, LoRA, AdaLoRA, EVA or fully."""

from __future__ import annotations

import argparse

from gelora.train.config import METHODS, PlanOptions, TrainConfig


def register(sub, name: str) -> argparse.ArgumentParser:
    d = TrainConfig(model="", task="", method="", out="")
    p = sub.add_parser(
        name,
        help="fine-tune a model on a GLUE task (gelora | lora | adalora | eva | full | geolora | gelora-geolora)",
    )
    p.add_argument("model", help="Hub id, local model folder, or 'minilm'")
    p.add_argument("--task", required=True, help="glue/<name>: cola, sst2, mrpc, stsb, qnli, rte, mnli, qqp")
    p.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    p.add_argument("--out", required=True, help="output folder (metrics.json, adapter/, checkpoint/)")
    p.add_argument("--plan", help="gelora, gelora-geolora: a plan.json from 'gelora plan' instead of profiling now")
    p.add_argument("--rank", type=int, default=d.rank, help=f"LoRA rank; AdaLoRA/EVA average rank ({d.rank})")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, help="learning rate (default 5e-4 for adapters, 2e-5 for full)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"per process ({d.batch_size})")
    p.add_argument("--max-length", type=int, default=d.max_length, help=f"tokens per example ({d.max_length})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="delete what --out holds and start over")
    p.add_argument("--data-dir", help="local GLUE folder (default: $GELORA_DATA_DIR, else the Hub)")
    p.add_argument("--max-train-samples", type=int, help="use the first N training rows")
    p.add_argument("--max-eval-samples", type=int, help="use the first N evaluation rows")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps (also every epoch end)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    p.add_argument("--lora-alpha", type=float, help="fixed LoRA alpha (default: 2 x each module's rank)")
    p.add_argument("--lora-dropout", type=float, default=d.lora_dropout)
    p.add_argument("--target-modules", help="comma-separated module names to adapt (default: the planner's choice)")
    p.add_argument("--eva-rho", type=float, default=d.eva_rho, help="EVA: a module may get up to rho*R ranks")
    p.add_argument("--geolora-tau", type=float, default=d.geolora_tau, help="GeoLoRA: relative truncation tolerance")
    p.add_argument("--geolora-r-max", type=int, help="GeoLoRA: largest rank a module may grow to (2 x start)")
    p.add_argument("--geolora-augment-every", type=int, default=d.geolora_augment_every,
                   help="GeoLoRA: geometric step every N optimizer steps, AdamW on S in between (1)")
    p.add_argument("--geolora-scaling", type=float, default=d.geolora_scaling,
                   help=f"GeoLoRA: fixed output scale s in W0 + s V S U^T ({d.geolora_scaling:g})")
    p.add_argument("--geolora-lr", type=float, help="GeoLoRA: step size of S in the geometric step (default: --lr)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("gelora profiling and planning (without --plan)")
    o = PlanOptions()
    g.add_argument("--pooling", default=o.pooling)
    g.add_argument("--estimator", default=o.estimator)
    g.add_argument("--num-samples", type=int, default=o.num_samples, help="texts to profile on")
    g.add_argument("--bootstrap", type=int, default=o.bootstrap)
    g.add_argument("--rule", default=o.rule, help="lower-bound | budget")
    g.add_argument("--offset", type=int, default=o.offset)
    g.add_argument("--min-rank", type=int, default=o.min_rank)
    g.add_argument("--budget-rank", type=int, help="rule=budget: average rank to spend")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model=args.model,
        task=args.task,
        method=args.method,
        out=args.out,
        plan=args.plan,
        rank=args.rank,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        resume=args.resume,
        overwrite=args.overwrite,
        data_dir=args.data_dir,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        max_steps=args.max_steps,
        checkpoint_every=args.checkpoint_every,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=args.target_modules.split(",") if args.target_modules else None,
        eva_rho=args.eva_rho,
        geolora_tau=args.geolora_tau,
        geolora_r_max=args.geolora_r_max,
        geolora_augment_every=args.geolora_augment_every,
        geolora_lr=args.geolora_lr,
        geolora_scaling=args.geolora_scaling,
        progress=not args.no_progress,
        plan_options=PlanOptions(
            pooling=args.pooling,
            estimator=args.estimator,
            num_samples=args.num_samples,
            bootstrap=args.bootstrap,
            rule=args.rule,
            offset=args.offset,
            min_rank=args.min_rank,
            budget_rank=args.budget_rank,
        ),
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
        f"{metrics['method']} on {metrics['task']}: {name} best {best[name]:.4f} (epoch {best['epoch']:g}), "
        f"final {final[name]:.4f}; {metrics['trainable_params']:,} trainable params; "
        f"{metrics['wall_seconds']:.0f} s; written to {args.out}"
    )
    return 0
