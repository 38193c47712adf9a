"""``train(config)``: one fine-tuning run as set-up, loop and finish (Accelerate for devices and processes).

The runner knows tasks and methods only through their interfaces (``gelora.train.tasks.Task``,
``gelora.train.methods.Method``): it never names one.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gelora.errors import GeloraError
from gelora.io import atomic_write_dir, atomic_write_json
from gelora.train.checkpoint import (
    METRICS_FILE,
    TRACKER_DIR,
    check_global_batch,
    claim_output_dir,
    continue_schedule,
    forget_unstarted_run,
    load_checkpoint,
    record_run,
    save_checkpoint,
    trainable_weights_only,
)
from gelora.train.config import TrainConfig
from gelora.train.loaders import eval_loader, train_loader
from gelora.train.methods import BuildContext, Method, method_class
from gelora.train.state import TrainState
from gelora.train.tasks import Task, TaskData, make_task



@dataclass
class Run:
    """Everything the loop needs, as ``setup`` prepares it."""

    config: TrainConfig
    accelerator: Any
    task: Task
    data: TaskData
    tokenizer: Any
    method: Method
    model: torch.nn.Module
    optimizer: Any
    scheduler: Any
    loader: Any
    evaluation: Any
    trainable: list[torch.nn.Parameter]
    state: TrainState
    total_steps: int
    started: float  # perf_counter at the start of this session
    prior_seconds: float  # wall time of earlier (interrupted) sessions

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def elapsed(self) -> float:
        return self.prior_seconds + time.perf_counter() - self.started


def train(config: TrainConfig) -> dict[str, Any]:
    """Fine-tune ``config.model`` on ``config.task`` with ``config.method``; return what ``DIR/metrics.json`` holds.

    Deterministic given ``config.seed`` on CPU; a run killed at any point and restarted with ``resume=True`` ends
    with the same weights and metrics as one that was never interrupted. Under ``accelerate launch`` or
    ``torchrun`` every process calls it and they train as one data-parallel run.

    Parameters
    ----------
    config : TrainConfig
        The run; checked with :meth:`TrainConfig.validate` before any data or model is loaded.

    Returns
    -------
    dict
        The run's metrics, also written to ``<out>/metrics.json``: ``metric`` (the task's selection metric) with
        ``greater_is_better``; ``best``, ``final`` and ``history`` (one entry per evaluation: ``epoch``, ``step``,
        ``train_loss`` and the task's scores); ``trainable_params``, ``total_params`` and ``ranks`` (per adapted
        module); ``steps``, ``train_samples``, ``eval_samples``; ``median_step_seconds``, ``wall_seconds`` and
        ``peak_memory_mb`` (``peak_memory_kind``: CUDA allocations, or the process's peak RSS on CPU); ``device``,
        ``num_processes``, ``mixed_precision``; ``config`` (:meth:`TrainConfig.to_dict`); ``task``, ``method``,
        ``seed``, ``model``; and what the method or data add (e.g. ``geolora``, ``plan_source``,
        ``train_windows``). ``resume=True`` on a finished run of the same length returns its saved metrics without
        training.

    Raises
    ------
    GeloraError
        Settings no run can use (before anything is loaded); an ``out`` that is a file, holds foreign files or
        another run (without ``resume`` or ``overwrite``), or a run with other settings (with ``resume``); a resume
        that would shorten the run; ``mixed_precision="bf16"`` on a GPU without bfloat16; data or a model that
        cannot be loaded. A run that fails before its first checkpoint removes what it wrote to ``out``.

    Examples
    --------
    >>> config = TrainConfig("minilm", "glue/rte", "lora", "runs/rte-lora", data_dir="../shared/data/glue",
    ...                      max_train_samples=64, max_eval_samples=32, max_steps=2, progress=False)
    >>> metrics = train(config)  # doctest: +SKIP
    >>> metrics["steps"], metrics["metric"]  # doctest: +SKIP
    (2, 'accuracy')
    """
    config.validate()
    accelerator = _accelerator(config)
    out = Path(config.out)
    created = not out.exists()
    finished = claim_output_dir(config, accelerator)
    if finished is not None:
        return finished
    record_run(config, accelerator)  # the folder is this run's from now on; a failure below takes the claim back
    try:
        run = setup(config, accelerator)
        loop(run)
    except BaseException:
        if accelerator.is_main_process:  # before a first checkpoint: a retry needs no --overwrite, no empty folder
            forget_unstarted_run(out, created)
        raise
    return finish(run)


def _accelerator(config: TrainConfig):
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    if config.mixed_precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise GeloraError("--mixed-precision bf16: this GPU does not support bfloat16; use fp16 or no")
    trackers = {"log_with": config.report_to, "project_dir": str(Path(config.out) / TRACKER_DIR)} if config.report_to else {}
    # cpu=True on a CPU-only machine is what lets torchrun / accelerate launch start gloo data parallelism there.
    accelerator = Accelerator(cpu=not cuda, mixed_precision=config.mixed_precision, **trackers)
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # peak of this run, not of earlier runs in the same process
    return accelerator


def setup(config: TrainConfig, accelerator) -> Run:
    """Data, model, optimizer and schedule; then the latest checkpoint when resuming."""
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    from gelora.models import load_tokenizer

    set_seed(config.seed)
    task = make_task(config)
    tokenizer = load_tokenizer(config.model)
    data = task.load(tokenizer)
    loader = accelerator.prepare(train_loader(data, config.batch_size, config.seed))
    # As in Transformers' Trainer: --max-steps, when given, sets the length (over as many epochs as it takes).
    total_steps = config.max_steps if config.max_steps is not None else config.epochs * len(loader)

    method = method_class(config.method)(config)
    context = BuildContext(config, task, data, tokenizer, accelerator, total_steps)
    base = task.build_model()
    if config.gradient_checkpointing:
        # Non-reentrant: recomputation works when only adapter weights (not the inputs) need gradients.
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = method.build(base, context)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    # Stepped once per optimizer step by this loop (not by Accelerate, which steps it once per process).
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    model, optimizer, evaluation = accelerator.prepare(model, optimizer, eval_loader(data, config.evaluation_batch_size))
    method.attach(model, optimizer)

    state = TrainState(global_batch_size=config.batch_size * accelerator.num_processes,
                       build_info=method.info | data.info)
    accelerator.register_for_checkpointing(state, scheduler, *method.checkpoint_state())
    accelerator.register_save_state_pre_hook(trainable_weights_only(method.checkpoint_keeps(model)))
    if config.resume and load_checkpoint(accelerator, config.out):
        check_global_batch(state, config.batch_size, accelerator.num_processes)
        continue_schedule(scheduler)
        state.build_info |= {key: method.info[key] for key in method.length_info if key in method.info}
        if state.global_step > total_steps:
            raise GeloraError(
                f"--resume: the run is at step {state.global_step}, past the {total_steps} steps asked for; a run can "
                "be continued for more epochs or steps, not shortened"
            )
    if config.report_to:
        accelerator.init_trackers("gelora", config={k: v for k, v in config.to_dict().items()
                                                    if isinstance(v, (int, float, str, bool))})
    return Run(config, accelerator, task, data, tokenizer, method, model, optimizer, scheduler, loader, evaluation,
               trainable, state, total_steps, started=time.perf_counter(), prior_seconds=state.elapsed_seconds)


def loop(run: Run) -> None:
    """Train until ``total_steps``: evaluate and checkpoint at every epoch end, checkpoint every N steps."""
    config, accelerator, state = run.config, run.accelerator, run.state
    bar = tqdm(
        total=run.total_steps,
        initial=state.global_step,
        disable=not (config.progress and accelerator.is_main_process),
        desc=f"{config.method} {run.task.name}",
    )
    run.model.train()
    while state.global_step < run.total_steps:
        # Through Accelerate's loader: each iteration sets its own epoch counter on the sampler, which would
        # otherwise undo ours (every epoch in the order of epoch 0 on one process).
        run.loader.set_epoch(state.epoch)
        for batch in accelerator.skip_first_batches(run.loader, state.step_in_epoch):
            tick = time.perf_counter()
            loss = training_step(batch, run, state.global_step)
            loss_value = accelerator.reduce(loss, reduction="mean").item()  # over all processes
            seconds = time.perf_counter() - tick
            state.global_step += 1
            state.step_in_epoch += 1
            state.loss_sum += loss_value
            state.step_seconds.append(seconds)
            bar.update(1)
            rows_s = len(batch["input_ids"]) * accelerator.num_processes / seconds
            bar.set_postfix(loss=f"{loss_value:.4f}", rows_s=f"{rows_s:.1f}")
            if config.report_to:
                accelerator.log({"train/loss": loss_value, "train/lr": run.scheduler.get_last_lr()[0]},
                                step=state.global_step)
            if state.global_step >= run.total_steps:
                break
            if state.global_step % config.checkpoint_every == 0:
                _checkpoint(run)

        # ---- end of an epoch (or of max_steps): evaluate, record, checkpoint
        if config.eval_every_epoch or state.global_step >= run.total_steps:
            _evaluate(run)
        if state.step_in_epoch >= run.steps_per_epoch:
            state.end_epoch()  # not at a --max-steps stop mid-epoch: a longer resumed run takes the epoch's next batch
        _checkpoint(run)
    bar.close()


def training_step(batch, run: Run, step: int) -> torch.Tensor:
    """One optimizer step for any method; returns the loss (detached).

    The order matters: clip (and tell the method the clipping factor), the method's hooks around the optimizer
    step, the scheduler after them (GeoLoRA's S-step uses this step's learning rate), then zero the gradients.
    """
    accelerator, method, max_norm = run.accelerator, run.method, run.config.max_grad_norm
    loss = run.task.loss(run.model, batch, accelerator)  # with labels: includes AdaLoRA's orthogonal regulariser
    accelerator.backward(loss)
    if max_norm > 0:
        norm = accelerator.clip_grad_norm_(run.trainable, max_norm)
        if norm is not None:
            method.after_clipping(min(1.0, max_norm / (float(norm) + 1e-6)))
    method.before_optimizer_step()
    run.optimizer.step()
    method.after_optimizer_step(accelerator.unwrap_model(run.model), step)
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def _evaluate(run: Run) -> None:
    state = run.state
    scores = run.task.evaluate(run.model, run.evaluation, run.accelerator)
    state.history.append(
        {
            "epoch": state.epoch + state.step_in_epoch / run.steps_per_epoch,
            "step": state.global_step,
            "train_loss": state.loss_sum / max(state.step_in_epoch, 1),
            **scores,
        }
    )
    if run.config.report_to:
        model = run.accelerator.unwrap_model(run.model)
        tracked = {f"eval/{k}": v for k, v in scores.items()} | run.method.tracked(model)
        run.accelerator.log(tracked, step=state.global_step)


def _checkpoint(run: Run) -> None:
    run.state.elapsed_seconds = run.elapsed()
    save_checkpoint(run.accelerator, run.config.out, run.state)


def finish(run: Run) -> dict[str, Any]:
    """Write metrics.json and what the method trained; return the metrics."""
    from gelora.models import save_class_names

    accelerator, out = run.accelerator, Path(run.config.out)
    metrics = _summary(run)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(run.model)

        def write(folder: Path) -> None:
            run.method.save(model, folder)
            save_class_names(model, folder)
            run.tokenizer.save_pretrained(folder)

        atomic_write_dir(out / run.method.output, write)
        run.method.finish(out)
        atomic_write_json(out / METRICS_FILE, metrics)
    if run.config.report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return metrics


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    # ru_maxrss (KiB on Linux) is the peak over the process's life, earlier runs in it included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def _summary(run: Run) -> dict[str, Any]:
    config, state, accelerator = run.config, run.state, run.accelerator
    selected = run.task.metric
    history = state.history
    sign = 1 if run.task.greater_is_better else -1
    best = max(history, key=lambda h: sign * h[selected])
    model = accelerator.unwrap_model(run.model)
    peak_mb, peak_kind = _peak_memory_mb(accelerator.device)
    return {
        "task": run.task.name,
        "method": config.method,
        "seed": config.seed,
        "model": config.model,
        "metric": selected,
        "greater_is_better": run.task.greater_is_better,
        "best": best,
        "final": history[-1],
        "history": history,
        "trainable_params": run.method.trainable_parameter_count(model),
        "total_params": sum(p.numel() for p in model.parameters()),
        "ranks": run.method.ranks(model),
        "steps": state.global_step,
        "train_samples": len(run.data.train),
        "eval_samples": len(run.data.eval),
        "median_step_seconds": statistics.median(state.step_seconds) if state.step_seconds else None,
        "peak_memory_mb": peak_mb,
        "peak_memory_kind": peak_kind,
        "wall_seconds": run.elapsed(),
        **state.build_info,
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "config": config.to_dict(),
    }
