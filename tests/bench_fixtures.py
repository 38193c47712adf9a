"""A tiny random BERT, toy GLUE-shaped data, a fake training runner and result rows for the bench tests (fast)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from train_fixtures import make_tiny_model  # noqa: F401  (re-exported for the bench tests)

WORDS = "the a movie film plot actor scene story music very quite really rather good bad".split()


def make_glue_dir(folder: Path, n: int = 40) -> Path:
    """Toy rte (pairs, 2 classes) and stsb (pairs, regression) files."""
    rng = random.Random(0)
    for task in ("rte", "stsb"):
        for split in ("train", "validation"):
            rows = []
            for i in range(n):
                row = {
                    "sentence1": " ".join(rng.choices(WORDS, k=rng.randint(3, 9))),
                    "sentence2": " ".join(rng.choices(WORDS, k=rng.randint(3, 9))),
                    "label": i % 2 if task == "rte" else round(rng.uniform(0, 5), 2),
                    "idx": i,
                }
                rows.append(row)
            path = folder / task / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


class FakeTrain:
    """Stands in for ``gelora.train.runner.train``: writes a plausible ``metrics.json`` and records each config."""

    def __init__(self, fail_on: str | None = None):
        self.configs: list[Any] = []
        self.fail_on = fail_on

    def __call__(self, config) -> dict[str, Any]:
        self.configs.append(config)
        if self.fail_on == config.method:
            raise RuntimeError(f"{config.method} exploded")
        metric = {"rte": ("accuracy",), "stsb": ("pearson", "spearman")}[config.task]
        score = 0.5 + 0.01 * config.seed + (0.05 if config.method == "gelora" else 0.0)
        final = {"epoch": 1.0, "train_loss": 0.7} | {m: score for m in metric}
        metrics = {
            "task": f"glue/{config.task}",
            "method": config.method,
            "seed": config.seed,
            "metric": metric[0],
            "best": final,
            "final": final,
            "history": [final],
            "trainable_params": 1000 * config.lora_rank + (50_000 if config.method == "full" else 0),
            "median_step_seconds": 0.1 + (0.05 if config.method == "adalora" else 0.0),
            "wall_seconds": 10.0 + (10.0 if config.method == "adalora" else 0.0),
            "steps": 2,
        }
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics


def ok_row(
    task: str, method: str, seed: int, score: float, step: float = 1.0, wall: float = 5.0
) -> dict[str, Any]:
    """A finished ``results.jsonl`` row with only what the aggregation reads."""
    return {
        "task": task, "method": method, "seed": seed, "score": score, "secondary": None, "trainable_params": 10,
        "median_step_seconds": step, "wall_seconds": wall, "plan_seconds": 0.0, "status": "ok",
    }
