"""A new method or task is one class plus one registry entry: the runner, CLI and bench need no change."""

from __future__ import annotations

import json
import random

from helpers import tiny_config

from gelora.cli import main
from gelora.plan import uniform_plan
from gelora.train import methods, tasks
from gelora.train.methods.lora import LoRA
from gelora.train.tasks import TaskData
from gelora.train.tasks.classification import SequenceClassification


class AttentionLoRA(LoRA):
    """The toy method: uniform LoRA of rank R on the attention projections only."""

    name = "lora-attention"

    def plan(self, base, ctx):
        return uniform_plan(base, self.config.lora_rank, ["query", "key", "value"])


def test_a_method_is_one_class_and_one_registry_line(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(methods.METHODS, AttentionLoRA.name, AttentionLoRA)
    config = tiny_config(tiny, tmp_path / "run", method="lora-attention", rank=3, max_steps=2)
    argv = ["train", config.model, "--task", config.task, "--method", "lora-attention", "--out", config.out,
            "--data-dir", config.data_dir, "--rank", "3", "--max-steps", "2", "--max-train-samples", "16",
            "--max-eval-samples", "8", "--batch-size", "8", "--max-length", "24", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["method"] == "lora-attention" and metrics["steps"] == 2
    # Every adapted module is an attention projection, at rank 3; the dense layers got no adapter.
    assert metrics["ranks"] and set(metrics["ranks"].values()) == {3}
    assert all(name.rsplit(".", 1)[-1] in ("query", "key", "value") for name in metrics["ranks"])
    saved = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert not any("dense" in m for m in saved["target_modules"])


class ParityTask(SequenceClassification):
    """The toy task: is the number of words even? Rows made up on the spot, scored by accuracy."""

    num_labels, metrics = 2, ("accuracy",)

    def load(self, tokenizer) -> TaskData:
        from transformers import DataCollatorWithPadding

        words = "the a movie film plot actor scene story music good bad very quite really rather".split()
        rng = random.Random(0)
        texts = [" ".join(rng.choices(words, k=rng.randint(2, 12))) for _ in range(48)]
        rows = [dict(tokenizer(t), labels=len(t.split()) % 2) for t in texts]
        return TaskData(rows[8:], rows[:8], DataCollatorWithPadding(tokenizer), [(t,) for t in texts[8:]])


def test_a_task_is_one_class_and_one_registry_line(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(tasks.TASKS, "parity", ParityTask)
    argv = ["train", tiny["model"], "--task", "parity", "--method", "gelora", "--out", str(tmp_path / "run"),
            "--max-steps", "2", "--batch-size", "8", "--num-samples", "40", "--max-length", "24", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task"] == "parity" and metrics["metric"] == "accuracy" and metrics["eval_samples"] == 8
    assert json.loads((tmp_path / "run" / "profile.json").read_text())["data"]["task"] == "parity"
