"""A run killed with SIGKILL mid-epoch and restarted with --resume ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from helpers import tiny_config

from gelora.train.runner import train

SRC = Path(__file__).resolve().parents[1] / "src"


def cli(config, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "gelora", "train", config.model,
        "--task", config.task, "--method", config.method, "--out", config.out, "--data-dir", config.data_dir,
        "--epochs", str(config.epochs), *(["--rank", str(config.rank)] if config.rank is not None else []), "--batch-size", str(config.batch_size),
        "--max-length", str(config.max_length), "--max-train-samples", str(config.max_train_samples),
        "--max-eval-samples", str(config.max_eval_samples), "--checkpoint-every", str(config.checkpoint_every),
        "--seed", str(config.seed), "--no-progress", *extra,
    ]  # fmt: skip


def wait_for_mid_epoch_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 120) -> dict:
    latest = out / "checkpoint" / "latest"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        if latest.exists():
            progress = json.loads((out / "checkpoint" / latest.read_text().strip() / "state.json").read_text())
            if progress["step_in_epoch"] > 0:
                return progress
        time.sleep(0.005)
    pytest.fail("no mid-epoch checkpoint appeared")


# LoRA proves the point in the fast tier; AdaLoRA's and GeoLoRA's extra state (rank allocator, factors) in the slow one
@pytest.mark.parametrize(
    "method", ["lora", pytest.param("adalora", marks=pytest.mark.slow), pytest.param("geolora", marks=pytest.mark.slow)]
)
def test_sigkill_then_resume_matches_uninterrupted_run(tiny, tmp_path, method):
    # 2 epochs of 40 steps, a checkpoint every 3 steps: the first one lands mid-epoch.
    settings = dict(method=method, max_train_samples=80, batch_size=2, epochs=2, checkpoint_every=3)
    killed = tiny_config(tiny, tmp_path / "killed", **settings)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cli(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        progress = wait_for_mid_epoch_checkpoint(proc, Path(killed.out))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert progress["global_step"] < 80 and not (tmp_path / "killed" / "metrics.json").exists()

    resumed = subprocess.run(cli(killed, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted = train(tiny_config(tiny, tmp_path / "straight", **settings))

    after_resume = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert after_resume["history"] == uninterrupted["history"]
    assert after_resume["final"] == uninterrupted["final"] and after_resume["ranks"] == uninterrupted["ranks"]
    weights = [load_file(tmp_path / run / "adapter" / "adapter_model.safetensors") for run in ("killed", "straight")]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert weights[0][name].equal(weights[1][name]), name


def test_a_max_steps_stop_mid_epoch_continues_with_the_epochs_next_batch(tiny, tmp_path, monkeypatch):
    """Stopped by --max-steps 2 in an epoch of 4 steps, then resumed to 6: the same batches, in the same order, as
    one run of 6 steps, and from step 2 on the same learning rates (the first 2 steps ran under a 2-step schedule;
    its last rate, 0, must not reach the continued run)."""
    from gelora.train import runner

    seen: list[list[list[int]]] = []
    rates: list[float] = []
    step = runner.training_step

    def recording_step(batch, run, at):
        seen.append(batch["input_ids"].tolist())
        rates.append(run.optimizer.param_groups[0]["lr"])
        return step(batch, run, at)

    monkeypatch.setattr(runner, "training_step", recording_step)
    settings = dict(max_train_samples=32, batch_size=8, checkpoint_every=100, warmup_ratio=0.0)  # 4 steps an epoch
    train(tiny_config(tiny, tmp_path / "stopped", max_steps=2, **settings))
    resumed = train(tiny_config(tiny, tmp_path / "stopped", max_steps=6, resume=True, **settings))
    stopped_then_resumed, seen[:] = list(seen), []
    resumed_rates, rates[:] = rates[2:], []
    straight = train(tiny_config(tiny, tmp_path / "straight", max_steps=6, **settings))
    assert len(seen) == 6 and stopped_then_resumed == seen
    assert resumed_rates == rates[2:] and min(resumed_rates) > 0
    assert resumed["final"]["epoch"] == straight["final"]["epoch"] == 1.5
