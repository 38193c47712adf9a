"""``gelora train --task sft`` against TRL's ``SFTTrainer`` + PEFT, side by side in one process.

The same model, data rows, LoRA config (uniform rank R on the same modules, alpha 2R, dropout), seed, learning
rate, schedule, batch and number of steps. Reported: training tokens per second (tokens that are not padding, over
the wall time of the training loop alone) and the final loss per completion token on the same evaluation rows,
computed by the same function for both trained models. Runs alternate (gelora, TRL, gelora, TRL, ...) so that a busy
machine slows both alike.

Both trainers see the rows in the same order: TRL gets them already in gelora's seeded order of the first epoch and
reads them sequentially (so ``--steps`` x ``--batch-size`` must not exceed the rows: one epoch). What still differs
between them is the random LoRA initialisation and dropout, which differ between seeds too: that is why each seed's
loss gap is reported next to the seed-to-seed spread. The script also checks that TRL's tokens (chat template,
completion mask) equal gelora's, row by row.

Usage: PYTHONPATH=src python benchmarks/sft_vs_trl.py [--model smollm2] [--data ../shared/data/gsm8k]
           [--steps 20] [--batch-size 4] [--max-length 128] [--eval-rows 200] [--seeds 0,1,2] [--out FILE.json]
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


def config(args, out: str, seed: int, data: str | None = None, train_rows: int | None = None) -> TrainConfig:
    options = DataOptions(data=data or args.data, prompt_column="question", completion_column="answer")
    return TrainConfig(model=args.model, task="sft", method="lora", out=out, rank=args.rank, lr=LR,
                       warmup_ratio=WARMUP, batch_size=args.batch_size, max_length=args.max_length,
                       max_steps=args.steps, epochs=1, max_train_samples=train_rows, max_eval_samples=args.eval_rows,
                       seed=seed, data_options=options, progress=False, eval_every_epoch=False)


def exact_rows(args, tokenizer) -> str:
    """A folder whose train.jsonl holds exactly ``steps x batch`` rows, each with answer tokens inside
    ``--max-length`` (gelora drops a row without any; TRL would keep it at zero loss, and the two would no longer
    see the same batches), and whose test.jsonl holds the first ``--eval-rows`` evaluation rows."""
    from gelora.train.tasks import make_task
    from gelora.train.tasks.sft_data import sft_columns, tokenize_sft

    needed = args.steps * args.batch_size
    task = make_task(config(args, tempfile.mkdtemp(), 0, train_rows=4 * needed))
    train, evaluation = task.load_splits()
    rows = [r for r in sft_columns(train, "question", "answer")
            if tokenize_sft([r], tokenizer, args.max_length).rows][:needed]
    if len(rows) < needed:
        raise SystemExit(f"only {len(rows)} of the first {4 * needed} rows keep answer tokens in {args.max_length}")
    folder = Path(tempfile.mkdtemp(prefix="sft-rows-"))
    (folder / "train.jsonl").write_text(
        "".join(json.dumps({"question": r["prompt"], "answer": r["completion"]}) + "\n" for r in rows))
    (folder / "test.jsonl").write_text(
        "".join(json.dumps({k: r[k] for k in ("question", "answer")}) + "\n" for r in evaluation))
    return str(folder)


def run_gelora(args, seed: int, data: str) -> dict:
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
        metrics = runner.train(config(args, out, seed, data))
    finally:
        runner.loop = loop
    return {"seconds": captured["seconds"], "tokens": captured["tokens"], "eval_loss": metrics["final"]["loss"],
            "trainable": metrics["trainable_params"]}


def gelora_order(n: int, seed: int) -> list[int]:
    """The row order of gelora's first epoch for ``seed``."""
    from gelora.train.loaders import EpochPermutation

    return list(EpochPermutation(n, seed))


def run_trl(args, seed: int, task, data, tokenizer) -> dict:
    from accelerate import Accelerator
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from transformers import AutoModelForCausalLM

    from gelora.models import load_model
    from gelora.plan import uniform_plan
    from gelora.train.loaders import eval_loader

    torch.manual_seed(seed)
    model = load_model(args.model, AutoModelForCausalLM)
    lora = uniform_plan(model, args.rank).to_lora_config(task_type="CAUSAL_LM", lora_dropout=0.1)
    # The same rows as gelora's, as conversations, so TRL applies the same chat template, in gelora's order
    order = gelora_order(len(task.train_rows), seed)
    rows = [{"prompt": [{"role": "user", "content": task.train_rows[i]["prompt"]}],
             "completion": [{"role": "assistant", "content": task.train_rows[i]["completion"]}]} for i in order]
    trainer = SFTTrainer(
        model,
        args=SFTConfig(output_dir=tempfile.mkdtemp(prefix="sft-trl-"), max_steps=args.steps,
                       per_device_train_batch_size=args.batch_size, learning_rate=LR,
                       warmup_steps=round(WARMUP * args.steps),  # as gelora rounds its warm-up ratio
                       lr_scheduler_type="linear", max_length=args.max_length, completion_only_loss=True,
                       seed=seed, report_to=[], save_strategy="no", logging_strategy="no", bf16=False,
                       use_cpu=not torch.cuda.is_available(), dataloader_drop_last=False,
                       train_sampling_strategy="sequential"),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    mismatched = token_mismatches(trainer.train_dataset, [data.train[i] for i in order], args.max_length)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trained = trainer.model
    loss = task.evaluate(trained, eval_loader(data, args.batch_size), Accelerator(cpu=not torch.cuda.is_available()))
    return {"seconds": seconds, "tokens": sum(sum(row["attention_mask"]) for row in data.train),
            "eval_loss": loss["loss"], "trainable": sum(p.numel() for p in trained.parameters() if p.requires_grad),
            "rows_tokenised_differently": mismatched}


def token_mismatches(trl_rows, gelora_rows: list[dict], max_length: int) -> int:
    """Rows where TRL's input ids or labels (-100 off the completion) differ from gelora's, after truncation."""
    return sum(
        list(trl["input_ids"][:max_length]) != list(ours["input_ids"])
        or list(trl["labels"][:max_length]) != list(ours["labels"])
        for trl, ours in zip(trl_rows, gelora_rows, strict=True)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; one gelora and one TRL run per seed")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    seeds = [int(x) for x in args.seeds.split(",")]

    from gelora.models import load_tokenizer
    from gelora.train.tasks import make_task
    from gelora.train.tasks.sft_data import sft_columns

    # The rows both trainers see: gelora's task loads and tokenises them; TRL gets the same prompt / completion text.
    tokenizer = load_tokenizer(args.model)
    folder = exact_rows(args, tokenizer)
    task = make_task(config(args, tempfile.mkdtemp(), seeds[0], folder))
    data = task.load(tokenizer)
    train, _ = task.load_splits()
    task.train_rows = list(sft_columns(train, "question", "answer"))
    assert len(data.train) == len(task.train_rows) == args.steps * args.batch_size  # none dropped: one epoch each
    runs = [{"seed": seed, "gelora": run_gelora(args, seed, folder), "trl": run_trl(args, seed, task, data, tokenizer)}
            for seed in seeds]
    for run in runs:
        run["ratio"] = rate(run["gelora"]) / rate(run["trl"])
        run["loss_gap"] = run["gelora"]["eval_loss"] / run["trl"]["eval_loss"] - 1

    print(f"{args.model}, {args.steps} steps of {args.batch_size} x <= {args.max_length} tokens, {args.eval_rows} "
          "eval rows; loss per completion token")
    print("| seed | gelora tokens/s | TRL tokens/s | ratio | gelora eval loss | TRL eval loss | gap | rows TRL "
          "tokenised differently |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['seed']} | {rate(r['gelora']):.0f} | {rate(r['trl']):.0f} | {r['ratio']:.2f}x | "
              f"{r['gelora']['eval_loss']:.4f} | {r['trl']['eval_loss']:.4f} | {r['loss_gap']:+.2%} | "
              f"{r['trl']['rows_tokenised_differently']} |")
    summary = {
        "ratio": mean_std([r["ratio"] for r in runs]),
        "loss_gap": mean_std([r["loss_gap"] for r in runs]),
        "gelora_eval_loss": mean_std([r["gelora"]["eval_loss"] for r in runs]),
        "trl_eval_loss": mean_std([r["trl"]["eval_loss"] for r in runs]),
    }
    print(f"gelora / TRL throughput {fmt(summary['ratio'], '.2f')}x; eval loss gelora {fmt(summary['gelora_eval_loss'])}"
          f" vs TRL {fmt(summary['trl_eval_loss'])}; gap {fmt(summary['loss_gap'], '+.2%')} (mean ± std over seeds "
          f"{args.seeds}); trainable {runs[0]['gelora']['trainable']:,} vs {runs[0]['trl']['trainable']:,}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=2))


def rate(run: dict) -> float:
    return run["tokens"] / run["seconds"]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(pair: tuple[float, float], spec: str = ".4f") -> str:
    return f"{format(pair[0], spec)} ± {format(pair[1], spec)}"


if __name__ == "__main__":
    main()
