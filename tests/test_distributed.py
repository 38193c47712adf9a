"""Data parallelism on 2 CPU processes (gloo) against the same work in 1 process with the same global batch.

One ``torchrun`` launch of ``distributed_worker.py`` trains every method with 4 rows per process, interrupts a run
after its first checkpoint, trains GeoLoRA in a plain Accelerate loop and profiles the model; one
``accelerate launch --multi_gpu -m gelora train`` checks the CLI path. The references run here, in 1 process with 8 rows.

Tolerance: float32 sums are taken in another order (two per-process means averaged by gloo instead of one mean
over 8 rows, other padding per batch); on this toy set-up weights agree to about 1e-8, EVA's to about 1e-6 (its
incremental SVD sees the 2-process gathered batches in another grouping). ``WEIGHT_TOL`` leaves a margin of 5x
over that but stays far below one learning-rate step (5e-4), so a missing all-reduce, a wrong data shard or a
skipped step fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from helpers import make_glue_dir, make_tiny_model

import distributed_worker as worker
from gelora.errors import GeloraError
from gelora.profile import Profile
from gelora.train.runner import train


SRC = Path(__file__).resolve().parents[1] / "src"
WEIGHT_TOL = dict(rtol=1e-5, atol=5e-6)
LAUNCH_TIMEOUT_S = 600

pytestmark = [
    pytest.mark.skipif(
        not (torch.distributed.is_available() and torch.distributed.is_gloo_available()), reason="no gloo backend"
    ),
    pytest.mark.timeout(2 * LAUNCH_TIMEOUT_S),  # the first test waits for the 2-process launch
]


def _launch(args: list[str], cwd: Path) -> None:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",  # gloo on CPU also where a GPU is present: comparable with the references
    }
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S
    )
    assert done.returncode == 0, f"launch failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


@pytest.fixture(scope="module", autouse=True)
def references_on_cpu():
    """The 1-process references run in this process: on CPU in float32 like the launched processes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny BERT without dropout (so 1- and 2-process runs are comparable) and the toy GLUE folder."""
    root = tmp_path_factory.mktemp("dist")
    model = make_tiny_model(root / "model")
    config = json.loads((model / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (model / "config.json").write_text(json.dumps(config))
    return {"model": str(model), "glue": str(make_glue_dir(root / "glue")), "root": root}


@pytest.fixture(scope="module")
def two_processes(tiny) -> Path:
    """Outputs of the 2-process worker (one launch for all checks)."""
    out = tiny["root"] / "two"
    worker_script = str(Path(worker.__file__))
    _launch(
        ["-m", "torch.distributed.run", "--nproc_per_node", "2", worker_script, tiny["model"], tiny["glue"], str(out)],
        tiny["root"],
    )
    return out


def _weights(run: Path) -> dict[str, torch.Tensor]:
    folder = run / "adapter" if (run / "adapter").exists() else run / "model"
    return load_file(next(folder.glob("*.safetensors")))


@pytest.mark.parametrize("method", worker.METHODS)
def test_two_processes_train_like_one_with_the_same_global_batch(tiny, two_processes, method):
    reference = train(worker.train_config(tiny["model"], tiny["glue"], tiny["root"] / "one" / method, method, 8))
    distributed = json.loads((two_processes / method / "metrics.json").read_text())
    assert distributed["num_processes"] == 2 and distributed["steps"] == reference["steps"] == 8
    for two, one in zip(distributed["history"], reference["history"]):
        assert two["accuracy"] == one["accuracy"]
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-6)  # mean over both processes
    expected = _weights(tiny["root"] / "one" / method)
    got = _weights(two_processes / method)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], **WEIGHT_TOL, msg=lambda m: f"{method} {name}: {m}")


def test_evaluation_gathers_every_row_once(two_processes):
    # 22 rows in batches of 4 on 2 processes: Accelerate pads the last round; gather_for_metrics drops the padding.
    assert json.loads((two_processes / "evaluated_rows.json").read_text()) == [22, 22]


def test_run_checkpointed_on_two_processes_resumes_on_one(tiny, two_processes):
    run = two_processes / "interrupted"
    progress = json.loads(next((run / "checkpoint").glob("*/state.json")).read_text())
    assert progress["global_step"] == worker.STOP_AFTER_STEP and progress["global_batch_size"] == 8
    resume = dict(checkpoint_every=3, resume=True)
    with pytest.raises(GeloraError, match="pass --batch-size 8"):  # 4 x 1 process is another global batch
        train(worker.train_config(tiny["model"], tiny["glue"], run, "lora", 4, **resume))
    resumed = train(worker.train_config(tiny["model"], tiny["glue"], run, "lora", 8, **resume))
    uninterrupted = train(worker.train_config(tiny["model"], tiny["glue"], tiny["root"] / "one-lora", "lora", 8))
    assert resumed["steps"] == 8 and resumed["num_processes"] == 1
    assert resumed["final"]["train_loss"] == pytest.approx(uninterrupted["final"]["train_loss"], rel=1e-6)
    expected = _weights(tiny["root"] / "one-lora")
    for name, value in _weights(run).items():
        torch.testing.assert_close(value, expected[name], **WEIGHT_TOL)


def test_geolora_processes_keep_identical_factors_equal_to_one_process(tiny, two_processes):
    first, second = (torch.load(two_processes / f"geolora_rank{r}.pt") for r in (0, 1))
    assert first["ranks"] == second["ranks"] and first["history"] == second["history"]
    for name, value in first["factors"].items():
        assert torch.equal(value, second["factors"][name]), name  # bitwise: process 0's factors are broadcast
    single = worker.train_geolora(tiny["model"], tiny["glue"], batch_size=8)
    assert single["ranks"] == first["ranks"] and len(set(single["ranks"].values())) > 1  # truncation chose
    for name, rank in single["ranks"].items():
        # Only equal if the geometric step used the all-reduced projected gradients. Compared as V S U^T: singular
        # vectors of (near-)equal singular values may rotate within their subspace under 1e-8 perturbations.
        torch.testing.assert_close(_delta_weight(first, name, rank), _delta_weight(single, name, rank), **WEIGHT_TOL)


def _delta_weight(state: dict, name: str, rank: int) -> torch.Tensor:
    U, S, V = (state["factors"][f"{name}.lora_{f}"] for f in "USV")
    return V[:, :rank] @ S[:rank, :rank] @ U[:, :rank].T


def test_distributed_profile_equals_single_process(tiny, two_processes):
    distributed = Profile.from_json(two_processes / "profile.json")
    single = worker.profile(tiny["model"], tiny["glue"])
    assert distributed.n_points == single.n_points
    for two, one in zip(distributed.boundaries, single.boundaries):
        assert (two.id, two.ci_low, two.ci_high, two.n_used) == pytest.approx((one.id, one.ci_low, one.ci_high, one.n_used))


@pytest.mark.slow  # the torchrun launch above keeps a 2-process run in the fast tier
def test_accelerate_launch_runs_gelora_train_on_two_processes(tiny):
    out = tiny["root"] / "cli"
    _launch(
        # --multi_gpu picks Accelerate's torchrun launcher; gelora asks for gloo when there is no GPU. (With
        # --cpu, accelerate launch starts 2 processes only through MPI.)
        ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "gelora", "train", tiny["model"],
         "--task", "glue/rte", "--method", "gelora", "--out", str(out), "--data-dir", tiny["glue"],
         "--batch-size", "4", "--max-train-samples", "32", "--max-eval-samples", "22", "--epochs", "1",
         "--max-length", "24", "--num-samples", "32", "--no-progress"],
        tiny["root"],
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["steps"] == 4 and metrics["eval_samples"] == 22
    assert (out / "adapter").is_dir() and (out / "plan.json").exists() and (out / "profile.json").exists()
