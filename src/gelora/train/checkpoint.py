"""The run folder: refuse to mix runs, and atomic checkpoints a killed run resumes from exactly.

Layout of ``DIR/checkpoint/``: one folder per checkpoint (``accelerator.save_state``, which holds the model's
trainable tensors, optimizer, scheduler, RNG states and the registered ``TrainState``, plus ``state.json``, the same
state for people), written under a ``.partial`` name and renamed when complete, and ``latest``, a one-line file
naming the checkpoint to resume from. Rewriting ``latest`` (atomically) is the commit point; older checkpoints are
deleted after it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from gelora.errors import GeloraError
from gelora.io import atomic_write_json, atomic_write_text, give_plain_modes
from gelora.outdir import OutputFolder
from gelora.train.config import TrainConfig
from gelora.train.state import TrainState

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoint"
LATEST = "latest"
STATE_FILE = "state.json"
TRACKER_DIR = "logs"


def run_folder() -> OutputFolder:
    """A run's folder: what the runner writes, and what every registered method and task adds to it."""
    from gelora.train.methods import METHODS
    from gelora.train.tasks import TASKS

    owns = {RUN_FILE, METRICS_FILE, CHECKPOINT_DIR, TRACKER_DIR}
    owns |= {m.output for m in METHODS.values()} | {o for m in METHODS.values() for o in m.outputs}
    owns |= {o for t in TASKS.values() for o in t.outputs}
    return OutputFolder(marker=RUN_FILE, owns=tuple(sorted(owns)), kind="run")


def has_started(out: Path) -> bool:
    """A run counts as started once it wrote a checkpoint (or finished): before that a retry may start afresh."""
    return (out / CHECKPOINT_DIR / LATEST).exists() or (out / METRICS_FILE).exists()


def claim_output_dir(config: TrainConfig, accelerator) -> dict[str, Any] | None:
    """Make ``config.out`` this run's folder; return the finished metrics when ``--resume`` finds the run complete.

    A folder holding another run (or anything else) is refused unless ``--overwrite`` (remove gelora's files) or
    ``--resume`` (same run settings required) is given. A run that never reached its first checkpoint (it failed
    or was killed) leaves a folder a plain retry may reuse.
    """
    out = Path(config.out)
    resuming = run_folder().claim(
        out,
        config.run_identity(),
        resume=config.resume,
        overwrite=config.overwrite,
        read_identity=lambda saved: TrainConfig.from_dict(saved).run_identity(),
        is_started=has_started,
    )
    if resuming and (out / METRICS_FILE).exists():
        if not _extends(config, out):
            return json.loads((out / METRICS_FILE).read_text())
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:  # unfinished again until the longer run ends (a kill must not look done)
            (out / METRICS_FILE).unlink()
    accelerator.wait_for_everyone()  # every process has checked before the main one changes anything
    if accelerator.is_main_process and not resuming:
        if out.exists():
            run_folder().clear(out)
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    return None


def _extends(config: TrainConfig, out: Path) -> bool:
    """Whether ``config`` asks a finished run in ``out`` for more training (a larger ``--epochs`` / ``--max-steps``).

    The continued steps follow the longer run's learning-rate schedule from where the run stopped, so the result is
    a continuation, not the run that would have been started with more epochs. A shorter length is refused.
    """
    old = TrainConfig.from_dict(json.loads((out / RUN_FILE).read_text()))
    length = (config.epochs, config.max_steps or 0)
    previous = (old.epochs, old.max_steps or 0)
    if length == previous:
        return False
    if config.epochs < old.epochs or (old.max_steps or 0) > (config.max_steps or 0) > 0:
        raise GeloraError(
            f"--resume: {str(out)!r} finished {_length(old)}; a run can be continued for more, not shortened (asked: "
            f"{_length(config)})"
        )
    return True


def record_run(config: TrainConfig, accelerator) -> None:
    """Mark ``config.out`` as this run's (once data and model are known to be good, so a bad input leaves no claim)."""
    if accelerator.is_main_process:
        atomic_write_json(Path(config.out) / RUN_FILE, config.to_dict())


def forget_unstarted_run(out: Path, created: bool) -> None:
    """After a failure before the first checkpoint: remove what the run wrote (and the folder if it made it)."""
    if has_started(out):
        return
    run_folder().clear(out)
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def trainable_weights_only(keeps: tuple[str, ...]):
    """A ``save_state`` hook that stores only trainable tensors plus entries starting with ``keeps``.

    Frozen weights come back when the base model is rebuilt, so a checkpoint has the adapter's size, not the
    model's.
    """

    def hook(models, weights, output_dir) -> None:
        for model, state in zip(models, weights):
            trainable = {name for name, p in model.named_parameters() if p.requires_grad}
            for key in [k for k in state if k not in trainable and not (keeps and k.startswith(keeps))]:
                del state[key]

    return hook


def save_checkpoint(accelerator, out: str | os.PathLike, state: TrainState) -> Path:
    """Write model, optimizer, registered state (``state``, scheduler, ...) and RNG states of every process."""
    root = Path(out) / CHECKPOINT_DIR
    name = f"epoch{state.epoch:03d}-step{state.global_step:08d}"
    final, partial = root / name, root / f"{name}.partial"
    if accelerator.is_main_process:
        for stale in (partial, final):  # left by a run killed while checkpointing
            shutil.rmtree(stale, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(partial / STATE_FILE, state.state_dict())
        give_plain_modes(partial)
        os.replace(partial, final)
        atomic_write_text(root / LATEST, name + "\n")
        for old in root.iterdir():
            if old.is_dir() and old.name != name:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, out: str | os.PathLike) -> bool:
    """Restore the latest checkpoint into the prepared and registered objects; False when there is none."""
    root = Path(out) / CHECKPOINT_DIR
    if not (root / LATEST).exists():
        return False
    folder = root / (root / LATEST).read_text().strip()
    accelerator.load_state(str(folder), strict=False)  # frozen weights are not in it (trainable_weights_only)
    return True


def _length(config: TrainConfig) -> str:
    steps = f", --max-steps {config.max_steps}" if config.max_steps else ""
    return f"--epochs {config.epochs}{steps}"


def continue_schedule(scheduler) -> None:
    """Give the optimizer the learning rates of ``scheduler`` (a ``LambdaLR``) at its restored step.

    A checkpoint restores the rates its run last used: at the end of a finished run, 0. A run continued for more
    epochs or steps has a longer schedule, and its next step must take that schedule's rate (a resumed run of the
    same length gets the rates it saved).
    """
    for group, base, rate in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * rate(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def check_global_batch(state: TrainState, batch_size: int, num_processes: int) -> None:
    """Refuse to resume with a global batch other than the checkpoint's: its positions count steps of that size.

    The number of processes may change (say 2 GPUs to 1) when ``--batch-size`` changes with it: the run then
    continues from the same global step, on the same samples, with the same learning-rate schedule.
    """
    saved = state.global_batch_size
    if saved == batch_size * num_processes:
        return
    fix = (
        f"pass --batch-size {saved // num_processes}"
        if saved % num_processes == 0
        else f"resume on a number of processes that divides {saved}"
    )
    raise GeloraError(
        f"--resume: the checkpoint counts steps of {saved} samples; {batch_size} per process x {num_processes} "
        f"processes is {batch_size * num_processes}: {fix}"
    )
