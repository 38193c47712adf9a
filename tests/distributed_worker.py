"""What ``test_distributed.py`` runs in 2 processes (``torchrun --nproc_per_node 2 tests/distributed_worker.py``).

One launch does every data-parallel check, since each process start costs seconds: training with every method,
a run interrupted after its first checkpoint (resumed by the test on 1 process), GeoLoRA's integrator in a plain
Accelerate loop, and a profile. The test runs the same functions in its own single process for the references.
Usage: ``distributed_worker.py MODEL_DIR GLUE_DIR OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

PER_PROCESS_BATCH = 4  # x 2 processes = the single-process reference's batch of 8
METHODS = ("lora", "gelora", "adalora", "eva", "full", "geolora")
STOP_AFTER_STEP = 3  # the interrupted run dies right after its checkpoint at this step


def train_config(model: str, glue: str, out: Path, method: str, batch_size: int, **overrides):
    """The tests' tiny run (32 rows: 4 global steps of 8 per epoch) without dropout, so 1 and 2 processes agree."""
    from helpers import tiny_config

    from gelora.options import ProfileOptions
    from gelora.train.methods import method_class

    settings = dict(
        method=method,
        batch_size=batch_size,
        max_eval_samples=22,  # not a multiple of 8: the last evaluation batch is padded, then de-duplicated
        # no dropout, so 1 and 2 processes agree (for the methods that have it)
        **({"lora_dropout": 0.0} if "lora_dropout" in method_class(method).uses_options else {}),
        profile_options=ProfileOptions(num_samples=32 if method_class(method).uses_plan else 1000),
    )
    return tiny_config({"model": model, "data_dir": glue}, out, **(settings | overrides))


class Interrupted(Exception):
    """Raised in place of a crash right after a checkpoint."""


def train_until_checkpoint(config, step: int) -> None:
    """Run ``train(config)`` and stop it (like a kill) once the checkpoint at ``step`` is committed."""
    from gelora.train import checkpoint, runner

    def save_then_stop(accelerator, out, state):
        saved = checkpoint.save_checkpoint(accelerator, out, state)
        if state.global_step == step:
            raise Interrupted
        return saved

    original, runner.save_checkpoint = runner.save_checkpoint, save_then_stop
    try:
        runner.train(config)
    except Interrupted:
        pass
    finally:
        runner.save_checkpoint = original


def train_geolora(model: str, glue: str, batch_size: int, steps: int = 6) -> dict[str, torch.Tensor | dict]:
    """A few GeoLoRA steps (geometric every second one) in a plain Accelerate loop; this process's factors and ranks."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from gelora.distributed import launched_without_gpu
    from gelora.models import load_classifier, load_tokenizer
    from gelora.geolora import GeoLoRAConfig, GeoLoRAIntegrator, apply_geolora, geolora_layers
    from gelora.train.config import TrainConfig
    from gelora.train.loaders import train_loader
    from gelora.train.tasks import make_task

    accelerator = Accelerator(cpu=launched_without_gpu())
    set_seed(0)
    config = TrainConfig(model=model, task="glue/rte", method="geolora", out="", data_dir=glue, max_length=24,
                         max_train_samples=steps * 8)
    data = make_task(config).load(load_tokenizer(model))
    loader = train_loader(data, batch_size, seed=0)
    # S starts at 0.05 I (rank 3) so that truncation has singular values to choose between: ranks end at 2 and 3.
    geo = GeoLoRAConfig(["query", "value", "dense"], r_init=3, r_max=8, tau=0.2, init_s=0.05, augment_every=2, seed=0)
    net = apply_geolora(load_classifier(model, 2), geo)
    for p in net.classifier.parameters():
        p.requires_grad_(True)
    # eps 1e-6, not 1e-8: Adam divides a gradient by its own size, so entries whose gradient is round-off (~1e-10)
    # would take full lr-sized steps of random sign, and 1- and 2-process runs (other summation orders) would part
    # by ~1e-5; with eps 1e-6 they agree to ~1e-7, and a missing all-reduce still shows.
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2, eps=1e-6)
    net, optimizer, loader = accelerator.prepare(net, optimizer, loader)
    integrator = GeoLoRAIntegrator(net, optimizer)  # wrapped model: the integrator unwraps it
    net.train()
    for batch in loader:
        accelerator.backward(net(**batch).loss)
        integrator.step()
    layers = geolora_layers(accelerator.unwrap_model(net))
    factors = ("lora_U", "lora_S", "lora_V")
    state = {f"{name}.{f}": getattr(layer, f).detach().clone() for name, layer in layers.items() for f in factors}
    return {"factors": state, "ranks": integrator.ranks(), "history": integrator.rank_history}


def profile(model: str, glue: str):
    from gelora.data import load_task, text_pairs
    from gelora.models import load_backbone, load_tokenizer
    from gelora.profile import profile_model

    texts = text_pairs(load_task("glue/rte", glue)["train"], ("sentence1", "sentence2"))
    return profile_model(
        load_backbone(model),
        load_tokenizer(model),
        texts,
        pooling="tokens",
        tokens_per_sequence=4,
        num_samples=40,
        batch_size=4,
        bootstrap=20,
        seed=3,
        progress=False,
    )


def count_evaluated_rows(rows: list[int]) -> None:
    """Make the runner append the number of rows each evaluation scores to ``rows``."""
    from gelora.train.tasks import classification

    compute = classification.compute_metrics

    def counting(logits, labels, metrics, is_regression):
        rows.append(len(labels))
        return compute(logits, labels, metrics, is_regression)

    classification.compute_metrics = counting


def main(model: str, glue: str, out: str) -> None:
    from gelora.distributed import is_main_process, process_index
    from gelora.train.runner import train

    root = Path(out)
    evaluated: list[int] = []
    count_evaluated_rows(evaluated)
    for method in METHODS:
        train(train_config(model, glue, root / method, method, PER_PROCESS_BATCH))
    if is_main_process():
        (root / "evaluated_rows.json").write_text(json.dumps(evaluated[: len(evaluated) // len(METHODS)]))
    interrupted = train_config(model, glue, root / "interrupted", "lora", PER_PROCESS_BATCH, checkpoint_every=3)
    train_until_checkpoint(interrupted, STOP_AFTER_STEP)
    geolora = train_geolora(model, glue, PER_PROCESS_BATCH)
    torch.save(geolora, root / f"geolora_rank{process_index()}.pt")
    result = profile(model, glue)
    if is_main_process():
        result.to_json(root / "profile.json")


if __name__ == "__main__":
    main(*sys.argv[1:4])
