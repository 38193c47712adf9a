"""Bad input to ``gelora train``: one clear message, exit status 2, no traceback."""

from __future__ import annotations

import json

import pytest
from helpers import make_glue_dir, tiny_config

from gelora.cli import main


def run_cli(config, *extra: str) -> list[str]:
    return [
        "train", config.model, "--task", config.task, "--method", config.method, "--out", config.out,
        "--data-dir", config.data_dir, "--batch-size", str(config.batch_size),
        "--max-length", str(config.max_length), "--max-train-samples", str(config.max_train_samples),
        "--max-eval-samples", str(config.max_eval_samples), "--no-progress",
        *(["--rank", str(config.rank)] if config.rank is not None else []), *extra,
    ]  # fmt: skip


def fails_with(capsys, argv: list[str], *phrases: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err
    return err


def test_unknown_method(tiny, tmp_path, capsys):
    err = fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o", method="qlora")), "invalid choice: 'qlora'")
    assert "lora" in err and len(err.strip().splitlines()) == 1


def test_rank_zero(tiny, tmp_path, capsys):
    fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o", rank=0)), "--rank must be at least 1")


def test_plan_from_another_model_names_the_missing_modules(tiny, tmp_path, capsys):
    from transformers import DistilBertConfig, DistilBertModel

    from gelora.plan import uniform_plan

    other = DistilBertModel(DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=37))
    uniform_plan(other, 4).to_json(tmp_path / "plan.json")
    config = tiny_config(tiny, tmp_path / "o", method="gelora")
    err = fails_with(capsys, run_cli(config, "--plan", str(tmp_path / "plan.json")), "lacks its module(s)")
    assert "transformer.layer.0" in err
    assert not (tmp_path / "o" / "run.json").exists()  # a refused input leaves no run behind


def test_plan_with_rank_zero_everywhere(tiny, tmp_path, capsys):
    from gelora.models import load_classifier
    from gelora.plan import uniform_plan

    plan = uniform_plan(load_classifier(tiny["model"], 2), 1)
    for block in plan.blocks:
        block.rank = 0
    plan.to_json(tmp_path / "plan.json")
    config = tiny_config(tiny, tmp_path / "o", method="gelora")
    fails_with(capsys, run_cli(config, "--plan", str(tmp_path / "plan.json")), "rank 0 to every block")


@pytest.mark.parametrize(
    ("task", "bad_label", "phrase"),
    [("rte", 0.5, "found the float 0.5"), ("rte", "entailment", "found a str label"), ("stsb", "high", "numbers")],
)
def test_labels_of_the_wrong_type(tiny, tmp_path, capsys, task, bad_label, phrase):
    data = make_glue_dir(tmp_path / "glue", n_train=8, n_eval=4)
    rows = [json.loads(line) for line in (data / task / "train.jsonl").read_text().splitlines()]
    (data / task / "train.jsonl").write_text("".join(json.dumps(r | {"label": bad_label}) + "\n" for r in rows))
    config = tiny_config(tiny, tmp_path / "o", task=f"glue/{task}", data_dir=str(data))
    fails_with(capsys, run_cli(config), f"glue/{task} train", phrase)


def test_output_folder_holding_another_run(tiny, tmp_path, capsys):
    config = tiny_config(tiny, tmp_path / "o")
    assert main(run_cli(config, "--max-steps", "1")) == 0
    capsys.readouterr()
    fails_with(capsys, run_cli(config, "--seed", "1"), "already holds another gelora run", "--overwrite")
    fails_with(capsys, run_cli(config, "--seed", "1", "--resume"), "different settings (seed: 0 -> 1")
    assert main(run_cli(config, "--seed", "1", "--max-steps", "1", "--overwrite")) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["seed"] == 1


def test_output_folder_with_foreign_files(tiny, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o")), "already holds files")
