"""The output folder: refuse to mix runs, and atomic checkpoints a killed run resumes from exactly.

Layout of ``DIR/checkpoint/``: one folder per checkpoint (``accelerator.save_state`` plus ``progress.json``), written
under a ``.partial`` name and renamed when complete, and ``latest``, a one-line file naming the checkpoint to resume
from. Rewriting ``latest`` (atomically) is the commit point; older checkpoints are deleted after it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from gelora.errors import GeloraError
from gelora.io import atomic_write_json, atomic_write_text
from gelora.train.config import TrainConfig

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoint"
LATEST = "latest"
PROGRESS = "progress.json"


def claim_output_dir(config: TrainConfig, accelerator) -> dict[str, Any] | None:
    """Make ``config.out`` this run's folder; return the finished metrics when ``--resume`` finds the run complete.

    A folder holding another run (or anything else) is refused unless ``--overwrite`` (wipe it) or ``--resume``
    (same run settings required) is given.
    """
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise GeloraError(f"--out {str(out)!r} is a file; give a folder")
    occupied = out.exists() and any(out.iterdir())
    run_file = out / RUN_FILE
    if occupied and config.resume:
        if not run_file.exists():
            raise GeloraError(f"--out {str(out)!r} holds files but no {RUN_FILE}: not a gelora run to resume")
        previous = TrainConfig.from_dict(json.loads(run_file.read_text()))
        _check_same_run(previous, config)
        if (out / METRICS_FILE).exists():
            return json.loads((out / METRICS_FILE).read_text())
    elif occupied and not config.overwrite:
        what = "another gelora run" if run_file.exists() else "files"
        raise GeloraError(
            f"--out {str(out)!r} already holds {what}; pass --resume to continue it, --overwrite to replace it, "
            "or choose another folder"
        )
    accelerator.wait_for_everyone()  # every process has checked before the main one changes anything
    if accelerator.is_main_process:
        if occupied and config.overwrite:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    return None


def record_run(config: TrainConfig, accelerator) -> None:
    """Mark ``config.out`` as this run's (once data and model are known to be good, so a bad input leaves no claim)."""
    if accelerator.is_main_process:
        atomic_write_json(Path(config.out) / RUN_FILE, config.to_dict())


def _check_same_run(previous: TrainConfig, config: TrainConfig) -> None:
    old, new = previous.run_identity(), config.run_identity()
    differ = [k for k in new if old.get(k) != new[k]]
    if differ:
        changes = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in differ)
        raise GeloraError(
            f"--resume: {config.out!r} holds a run with different settings ({changes}); "
            "use the original settings, or --overwrite to start over"
        )


def keep_trainable_weights(models, weights, output_dir) -> None:
    """``save_state`` hook: store only trainable tensors; frozen ones come back when the base model is rebuilt.

    Keeps an adapter checkpoint at the adapter's size instead of the whole model's.
    """
    from gelora.geolora import geolora_layers

    for model, state in zip(models, weights):
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        # GeoLoRA's bases and ranks are not trained by the optimizer but change every step.
        geolora = tuple(f"{name}." for name in geolora_layers(model))
        for key in [k for k in state if k not in trainable and not k.startswith(geolora or ("\0",))]:
            del state[key]


def save_checkpoint(accelerator, out: str | os.PathLike, progress: dict[str, Any]) -> Path:
    """Write model, optimizer, registered state (scheduler, ...) and RNG states of every process, then ``progress``."""
    root = Path(out) / CHECKPOINT_DIR
    name = f"epoch{progress['epoch']:03d}-step{progress['global_step']:08d}"
    final, partial = root / name, root / f"{name}.partial"
    if accelerator.is_main_process:
        for stale in (partial, final):  # left by a run killed while checkpointing
            shutil.rmtree(stale, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(partial / PROGRESS, progress)
        os.replace(partial, final)
        atomic_write_text(root / LATEST, name + "\n")
        for old in root.iterdir():
            if old.is_dir() and old.name != name:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, out: str | os.PathLike) -> dict[str, Any] | None:
    """Restore the latest checkpoint into the prepared objects; return its progress, or None when there is none."""
    root = Path(out) / CHECKPOINT_DIR
    if not (root / LATEST).exists():
        return None
    folder = root / (root / LATEST).read_text().strip()
    accelerator.load_state(str(folder), strict=False)  # frozen weights are not in it (keep_trainable_weights)
    return json.loads((folder / PROGRESS).read_text())


def check_global_batch(progress: dict[str, Any], batch_size: int, num_processes: int) -> None:
    """Refuse to resume with a global batch other than the checkpoint's: its positions count steps of that size.

    The number of processes may change (say 2 GPUs to 1) when ``--batch-size`` changes with it: the run then
    continues from the same global step, on the same samples, with the same learning-rate schedule.
    """
    saved = progress.get("global_batch_size")
    if saved is None or saved == batch_size * num_processes:
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
