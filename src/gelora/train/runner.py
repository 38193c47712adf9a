"""``train(config)``: one fine-tuning run, a loop that reads top to bottom (Accelerate for devices and processes)."""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gelora.io import atomic_write_dir, atomic_write_json
from gelora.models import load_tokenizer
from gelora.train.checkpoint import (
    METRICS_FILE,
    check_global_batch,
    claim_output_dir,
    keep_trainable_weights,
    load_checkpoint,
    record_run,
    save_checkpoint,
)
from gelora.train.config import TrainConfig
from gelora.train.methods import BuiltModel, adapter_ranks, build_model
from gelora.train.metrics import compute_metrics
from gelora.train.tasks import eval_loader, load_task_data, train_loader


def train(config: TrainConfig) -> dict[str, Any]:
    """Fine-tune ``config.model`` on ``config.task`` with ``config.method``; return what ``DIR/metrics.json`` holds.

    Deterministic given ``config.seed`` on CPU; a run killed at any point and restarted with ``resume=True`` ends
    with the same weights and metrics as one that was never interrupted.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    config.validate()
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    # cpu=True on a CPU-only machine is what lets torchrun / accelerate launch start gloo data parallelism there.
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # peak of this run, not of earlier runs in the same process
    finished = claim_output_dir(config, accelerator)
    if finished is not None:
        return finished
    set_seed(config.seed)

    # ---- data and model
    tokenizer = load_tokenizer(config.model)
    data = load_task_data(
        config.task, tokenizer, config.max_length, config.data_dir, config.max_train_samples, config.max_eval_samples
    )
    loader = train_loader(data, config.batch_size, config.seed)
    loader = accelerator.prepare(loader)
    steps_per_epoch = len(loader)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    built = build_model(config, data, tokenizer, total_steps, accelerator)
    model = built.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    # Stepped once per optimizer step by this loop (not by Accelerate, which steps it once per process).
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, evaluation = accelerator.prepare(model, optimizer, eval_loader(data, config.batch_size))
    if built.integrator is not None:
        built.integrator.optimizer = optimizer
    accelerator.register_for_checkpointing(scheduler, *built.checkpoint_state)
    accelerator.register_save_state_pre_hook(keep_trainable_weights)
    record_run(config, accelerator)

    # ---- where to start: a fresh run, or the latest checkpoint of a resumed one
    progress = {
        "epoch": 0,  # epochs completed
        "step_in_epoch": 0,
        "global_step": 0,
        # Positions count global steps of this many samples (per-process batch x processes), so a run can resume
        # on another number of processes given the same global batch.
        "global_batch_size": config.batch_size * accelerator.num_processes,
        "loss_sum": 0.0,  # over this epoch's steps so far
        "history": [],
        "elapsed_seconds": 0.0,  # wall time of earlier (interrupted) sessions
        "step_seconds": [],
        "build_info": built.info,
    }
    if config.resume:
        progress = load_checkpoint(accelerator, config.out) or progress
        check_global_batch(progress, config.batch_size, accelerator.num_processes)
    bar = tqdm(
        total=total_steps,
        initial=progress["global_step"],
        disable=not (config.progress and accelerator.is_main_process),
        desc=f"{config.method} {data.spec.name}",
    )

    # ---- training
    model.train()
    while progress["global_step"] < total_steps:
        # Through Accelerate's loader: each iteration sets its own epoch counter on the sampler, which would
        # otherwise undo ours (every epoch in the order of epoch 0 on one process).
        loader.set_epoch(progress["epoch"])
        batches = accelerator.skip_first_batches(loader, progress["step_in_epoch"])
        for batch in batches:
            tick = time.perf_counter()
            loss = training_step(
                batch, model, built, optimizer, scheduler, accelerator, trainable, config.max_grad_norm,
                progress["global_step"],
            )
            loss_value = accelerator.reduce(loss, reduction="mean").item()  # over all processes
            seconds = time.perf_counter() - tick
            progress["global_step"] += 1
            progress["step_in_epoch"] += 1
            progress["loss_sum"] += loss_value
            progress["step_seconds"].append(seconds)
            bar.update(1)
            samples_s = len(batch["labels"]) * accelerator.num_processes / seconds
            bar.set_postfix(loss=f"{loss_value:.4f}", samples_s=f"{samples_s:.1f}")
            if progress["global_step"] >= total_steps:
                break
            if progress["global_step"] % config.checkpoint_every == 0:
                save_checkpoint(accelerator, config.out, _snapshot(progress, started))

        # ---- end of an epoch (or of max_steps): evaluate, record, checkpoint
        done = progress["global_step"] >= total_steps
        if config.eval_every_epoch or done:
            scores = evaluate(model, evaluation, accelerator, data.spec)
            progress["history"].append(
                {
                    "epoch": progress["epoch"] + progress["step_in_epoch"] / steps_per_epoch,
                    "step": progress["global_step"],
                    "train_loss": progress["loss_sum"] / max(progress["step_in_epoch"], 1),
                    **scores,
                }
            )
        progress["epoch"] += 1
        progress["step_in_epoch"] = 0
        progress["loss_sum"] = 0.0
        save_checkpoint(accelerator, config.out, _snapshot(progress, started))
    bar.close()

    # ---- outputs
    metrics = _summary(config, data, model, accelerator, progress, started)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _save_trained(accelerator.unwrap_model(model), tokenizer, Path(config.out), config.method)
        if built.integrator is not None:
            from gelora.plots import plot_rank_history

            history = built.integrator.rank_history
            built.integrator.save_rank_history(Path(config.out) / "rank_history.json")
            plot_rank_history(history, Path(config.out) / "rank_history.png", f"{config.method} on {config.task}")
        atomic_write_json(Path(config.out) / METRICS_FILE, metrics)
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return metrics


@torch.no_grad()
def evaluate(model, loader, accelerator, spec) -> dict[str, float]:
    """Task metrics on the evaluation split, gathered from every process (padding duplicates dropped)."""
    model.eval()
    logits, labels = [], []
    for batch in loader:
        out = model(**{k: v for k, v in batch.items() if k != "labels"})
        batch_logits, batch_labels = accelerator.gather_for_metrics((out.logits.float(), batch["labels"]))
        logits.append(batch_logits.cpu().numpy())
        labels.append(batch_labels.cpu().numpy())
    model.train()
    return compute_metrics(np.concatenate(logits), np.concatenate(labels), spec)


def _snapshot(progress: dict[str, Any], started: float) -> dict[str, Any]:
    """Progress as a checkpoint stores it: the wall time of this session (since ``started``) folded in."""
    return progress | {"elapsed_seconds": progress["elapsed_seconds"] + time.perf_counter() - started}


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    # ru_maxrss (KiB on Linux) is the peak over the process's life, earlier runs in it included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def _summary(config, data, model, accelerator, progress, started) -> dict[str, Any]:
    spec = data.spec
    selected = spec.metrics[0]
    history = progress["history"]
    best = max(history, key=lambda h: h[selected])
    unwrapped = accelerator.unwrap_model(model)
    peak_mb, peak_kind = _peak_memory_mb(accelerator.device)
    return {
        "task": f"glue/{spec.name}",
        "method": config.method,
        "seed": config.seed,
        "model": config.model,
        "metric": selected,
        "best": best,
        "final": history[-1],
        "history": history,
        "trainable_params": _trainable_params(unwrapped),
        "total_params": sum(p.numel() for p in unwrapped.parameters()),
        "ranks": adapter_ranks(unwrapped),
        "steps": progress["global_step"],
        "train_samples": len(data.train),
        "eval_samples": len(data.eval),
        "median_step_seconds": statistics.median(progress["step_seconds"]) if progress["step_seconds"] else None,
        "peak_memory_mb": peak_mb,
        "peak_memory_kind": peak_kind,
        "wall_seconds": _snapshot(progress, started)["elapsed_seconds"],
        **progress["build_info"],
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "config": config.to_dict(),
    }


def _trainable_params(model) -> int:
    """Trained numbers: GeoLoRA's at the final ranks (its buffers are sized for r_max), else requires_grad ones."""
    from gelora.geolora import geolora_layers, trainable_parameter_count

    if geolora_layers(model):
        return trainable_parameter_count(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_step(
    batch, model, built: BuiltModel, optimizer, scheduler, accelerator, trainable: list, max_grad_norm: float, step: int
) -> torch.Tensor:
    """One optimizer step for any method; returns the loss (detached). ``trainable``: the parameters to clip.

    The order matters: clip (GeoLoRA's basis gradients by the same factor), GeoLoRA's hooks around the optimizer
    step, the scheduler after GeoLoRA's S-step (which uses this step's learning rate), AdaLoRA's reallocation
    while this step's gradients still exist, then zero the gradients.
    """
    loss = model(**batch).loss  # with labels: includes AdaLoRA's orthogonal regulariser
    accelerator.backward(loss)
    if max_grad_norm > 0:
        norm = accelerator.clip_grad_norm_(trainable, max_grad_norm)
        if built.integrator is not None and norm is not None:
            built.integrator.scale_basis_gradients(min(1.0, max_grad_norm / (float(norm) + 1e-6)))
    if built.integrator is not None:
        built.integrator.before_optimizer_step()  # GeoLoRA steps S inside its augmented block
    optimizer.step()
    if built.integrator is not None:
        built.integrator.after_optimizer_step()  # augment, step S, truncate: ranks may change
    scheduler.step()
    if built.after_step is not None:
        built.after_step(accelerator.unwrap_model(model), step)
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def _save_trained(model, tokenizer, out: Path, method: str) -> None:
    """The adapter in PEFT format (``DIR/adapter``, classifier head included) or, for full, the model (``DIR/model``).

    GeoLoRA adapters are exported as standard PEFT LoRA adapters at their final ranks.
    """
    from gelora.geolora import export_to_peft, geolora_layers

    def write(folder: Path) -> None:
        if geolora_layers(model):
            export_to_peft(model, folder)
        else:
            model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    atomic_write_dir(out / ("model" if method == "full" else "adapter"), write)
