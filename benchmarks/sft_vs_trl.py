"""``gelora train --task sft`` against TRL's ``SFTTrainer`` + PEFT, side by side in one process.

The same model, data rows, LoRA config (uniform rank R on the same modules, alpha 2R, dropout), seed, learning
rate, schedule, batch and number of steps. Reported: training tokens per second (tokens that are not padding, over
the wall time of the training loop alone) and the final loss per completion token on the same evaluation rows,
computed by the same function for both trained models. Runs alternate (gelora, TRL, gelora, TRL, ...) so that a busy
machine slows both alike.

Usage: PYTHONPATH=src python benchmarks/sft_vs_trl.py [--model smollm2] [--data ../shared/data/gsm8k]
           [--steps 20] [--batch-size 4] [--max-length 128] [--eval-rows 200] [--repeats 1] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gelora.train.config import DataOptions, TrainConfig

LR, WARMUP = 2e-4, 0.06


def config(args, out: str) -> TrainConfig:
    data = DataOptions(data=args.data, prompt_column="question", completion_column="answer")
    return TrainConfig(model=args.model, task="sft", method="lora", out=out, rank=args.rank, lr=LR,
                       warmup_ratio=WARMUP, batch_size=args.batch_size, max_length=args.max_length,
                       max_steps=args.steps, epochs=1, max_train_samples=args.steps * args.batch_size,
                       max_eval_samples=args.eval_rows, seed=args.seed, data_options=data, progress=False,
                       eval_every_epoch=False)


def run_gelora(args) -> dict:
    from gelora.train import runner

    out = tempfile.mkdtemp(prefix="sft-gelora-")
    captured = {"eval_seconds": 0.0}
    loop = runner.loop

    def timed(run):
        evaluate = run.task.evaluate

        def timed_evaluate(*a, **k):
            start = time.perf_counter()
            scores = evaluate(*a, **k)
            captured["eval_seconds"] += time.perf_counter() - start
            return scores

        run.task.evaluate = timed_evaluate
        start = time.perf_counter()
        loop(run)
        captured["seconds"] = time.perf_counter() - start - captured["eval_seconds"]  # training alone
        captured["tokens"] = sum(sum(row["attention_mask"]) for row in run.data.train)

    runner.loop = timed
    try:
        metrics = runner.train(config(args, out))
    finally:
        runner.loop = loop
    return {"seconds": captured["seconds"], "tokens": captured["tokens"], "eval_loss": metrics["final"]["loss"],
            "trainable": metrics["trainable_params"]}


def run_trl(args, task, data, tokenizer) -> dict:
    from accelerate import Accelerator
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from transformers import AutoModelForCausalLM

    from gelora.models import load_model
    from gelora.plan import uniform_plan
    from gelora.train.loaders import eval_loader

    torch.manual_seed(args.seed)
    model = load_model(args.model, AutoModelForCausalLM)
    lora = uniform_plan(model, args.rank).to_lora_config(task_type="CAUSAL_LM", lora_dropout=0.1)
    # The same rows as gelora's, as conversations, so TRL applies the same chat template
    rows = [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "completion": [{"role": "assistant", "content": r["completion"]}]} for r in task.train_rows]
    trainer = SFTTrainer(
        model,
        args=SFTConfig(output_dir=tempfile.mkdtemp(prefix="sft-trl-"), max_steps=args.steps,
                       per_device_train_batch_size=args.batch_size, learning_rate=LR,
                       warmup_steps=round(WARMUP * args.steps),  # as gelora rounds its warm-up ratio
                       lr_scheduler_type="linear", max_length=args.max_length, completion_only_loss=True,
                       seed=args.seed, report_to=[], save_strategy="no", logging_strategy="no", bf16=False,
                       use_cpu=not torch.cuda.is_available(), dataloader_drop_last=False),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trained = trainer.model
    loss = task.evaluate(trained, eval_loader(data, args.batch_size), Accelerator(cpu=not torch.cuda.is_available()))
    return {"seconds": seconds, "tokens": sum(sum(row["attention_mask"]) for row in data.train),
            "eval_loss": loss["loss"], "trainable": sum(p.numel() for p in trained.parameters() if p.requires_grad)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args()

    from gelora.models import load_tokenizer
    from gelora.train.tasks import make_task
    from gelora.train.tasks.sft_data import sft_columns

    # The rows both trainers see: gelora's task loads and tokenises them; TRL gets the same prompt / completion text.
    task = make_task(config(args, tempfile.mkdtemp()))
    tokenizer = load_tokenizer(args.model)
    data = task.load(tokenizer)
    train, _ = task.load_splits()
    task.train_rows = list(sft_columns(train, "question", "answer"))
    results = {"gelora": [], "trl": []}
    for _ in range(args.repeats):
        results["gelora"].append(run_gelora(args))
        results["trl"].append(run_trl(args, task, data, tokenizer))
    summary = {}
    for name, runs in results.items():
        rates = [r["tokens"] / r["seconds"] for r in runs]
        summary[name] = {"tokens_per_s": statistics.fmean(rates),
                         "eval_loss": statistics.fmean(r["eval_loss"] for r in runs),
                         "trainable": runs[0]["trainable"], "runs": runs}
    ratio = summary["gelora"]["tokens_per_s"] / summary["trl"]["tokens_per_s"]
    gap = summary["gelora"]["eval_loss"] / summary["trl"]["eval_loss"] - 1
    print(f"| trainer | tokens/s | eval loss (completion tokens) | trainable |  ({args.model}, {args.steps} steps of "
          f"{args.batch_size} x <= {args.max_length} tokens, {args.eval_rows} eval rows, seed {args.seed})")
    print("|---|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['tokens_per_s']:.0f} | {s['eval_loss']:.4f} | {s['trainable']:,} |")
    print(f"gelora / TRL throughput: {ratio:.2f}x; eval loss difference: {gap:+.1%}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "summary": summary, "ratio": ratio,
                                              "loss_gap": gap}, indent=2))


if __name__ == "__main__":
    main()
