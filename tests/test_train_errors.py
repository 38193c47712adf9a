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


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--seed", "-1"], "--seed must be a non-negative integer (got -1)"),
        (["--lora-dropout", "2"], "--lora-dropout must be in [0, 1) (got 2)"),
        (["--lr", "-1e-3"], "--lr must be positive (got -0.001)"),
        (["--warmup-ratio", "5"], "--warmup-ratio must be in [0, 1] (got 5)"),
        (["--budget-rank", "2"], "--budget-rank (profile and plan options) only apply to methods that train a "
                                 "GeLoRA plan, not lora"),
        (["--num-samples", "8", "--budget-rank", "2"], "--budget-rank, --num-samples (profile and plan options)"),
    ],
)
def test_settings_refused_before_anything_loads(tiny, tmp_path, capsys, monkeypatch, extra, phrase):
    from gelora import models

    monkeypatch.setattr(models, "load_tokenizer", lambda *a, **k: pytest.fail("loaded before the settings check"))
    fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o"), *extra), phrase)
    assert not (tmp_path / "o").exists()


def test_options_a_method_would_ignore_are_refused(tiny, tmp_path, capsys):
    full = tiny_config(tiny, tmp_path / "o", method="full")
    fails_with(capsys, run_cli(full, "--rank", "4"), "--rank does not apply to --method full")
    gelora = tiny_config(tiny, tmp_path / "o", method="gelora")
    fails_with(capsys, run_cli(gelora, "--plan", "p.json", "--target-modules", "query"), "--target-modules would be")
    fails_with(capsys, run_cli(gelora, "--budget-rank", "4"), "--budget-rank only applies to --rule budget")
    fails_with(capsys, run_cli(gelora, "--plan", "p.json", "--pooling", "mean"), "--plan gives the ranks")


def test_a_plan_for_a_wider_model_of_the_same_depth_is_refused(tiny, tmp_path, capsys):
    from transformers import BertConfig, BertForSequenceClassification

    from gelora.plan import uniform_plan

    wider = BertForSequenceClassification(BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                                     intermediate_size=37, vocab_size=100))
    uniform_plan(wider, 2).to_json(tmp_path / "plan.json")  # same module names as the tiny model, other widths
    config = tiny_config(tiny, tmp_path / "o", method="gelora")
    fails_with(capsys, run_cli(config, "--plan", str(tmp_path / "plan.json")), "made for a model with other layer")


def test_glue_data_without_labels_or_out_of_range_similarity(tiny, tmp_path, capsys):
    data = make_glue_dir(tmp_path / "glue", n_train=8, n_eval=4)
    for split in ("train", "validation"):  # (datasets reads both splits with one schema)
        rows = [json.loads(line) for line in (data / "rte" / f"{split}.jsonl").read_text().splitlines()]
        unlabelled = [{k: v for k, v in r.items() if k != "label"} for r in rows]
        (data / "rte" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in unlabelled))
    fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o", data_dir=str(data))), "has no 'label' column")
    rows = [json.loads(line) for line in (data / "stsb" / "train.jsonl").read_text().splitlines()]
    (data / "stsb" / "train.jsonl").write_text("".join(json.dumps(r | {"label": 7.5}) + "\n" for r in rows))
    config = tiny_config(tiny, tmp_path / "o", task="glue/stsb", data_dir=str(data))
    fails_with(capsys, run_cli(config), "similarity 7.5 is outside STS-B's 0..5")


def test_a_run_that_failed_before_its_first_checkpoint_leaves_nothing_and_retries(tiny, tmp_path, capsys, monkeypatch):
    from gelora.train import runner

    config = tiny_config(tiny, tmp_path / "o", method="gelora")
    monkeypatch.setattr(runner, "loop", lambda run: (_ for _ in ()).throw(RuntimeError("died in the first step")))
    with pytest.raises(RuntimeError):
        main(run_cli(config))
    assert not (tmp_path / "o").exists()  # profile.json, plan.json, run.json and the folder are gone
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    killed = tiny_config(tiny, tmp_path / "kept", method="gelora")
    with pytest.raises(RuntimeError):
        main(run_cli(killed, "--overwrite"))
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]  # the user's file stays
    monkeypatch.undo()
    assert main(run_cli(config, "--max-steps", "1")) == 0  # a plain retry, no --overwrite


def test_a_run_killed_before_its_first_checkpoint_may_be_retried(tiny, tmp_path, capsys):
    config = tiny_config(tiny, tmp_path / "o")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "run.json").write_text(json.dumps(config.to_dict()))  # claimed, then SIGKILL
    (tmp_path / "o" / "plan.json").write_text("{}")
    assert main(run_cli(config, "--max-steps", "1", "--seed", "3")) == 0, capsys.readouterr().err


def test_resume_names_defaults_as_defaults(tiny, tmp_path, capsys):
    config = tiny_config(tiny, tmp_path / "o")
    assert main(run_cli(config, "--max-steps", "1")) == 0
    capsys.readouterr()
    err = fails_with(capsys, run_cli(config, "--max-steps", "1", "--resume", "--lr", "1e-3", "--lora-alpha", "8"),
                     "lr: 0.0005 -> 0.001", "lora_alpha: its default -> 8.0")
    assert "None" not in err


@pytest.mark.parametrize(
    ("method", "extra", "phrase"),
    [
        ("full", ["--target-modules", "query"], "--target-modules does not apply to --method full; drop it"),
        ("full", ["--lora-dropout", "0.5"], "--lora-dropout does not apply to --method full"),
        ("lora", ["--geolora-tau", "0.5", "--eva-rho", "3"],
         "--eva-rho, --geolora-tau do not apply to --method lora; drop them"),
        ("geolora", ["--lora-alpha", "4"], "--lora-alpha does not apply to --method geolora"),
        ("geolora", ["--geolora-scaling", "0"], "--geolora-scaling must be positive"),
        ("geolora", ["--geolora-r-max", "2"], "--geolora-r-max 2 is below the starting rank 4"),
        ("adalora", ["--adalora-orth-reg-weight", "-5"], "--adalora-orth-reg-weight must be >= 0"),
        ("gelora", ["--plan", "/nonexistent/plan.json"], "does not exist"),
        ("lora", ["--max-length", "100"], "--max-length 100 is beyond the 64 positions"),
    ],
)
def test_settings_a_method_or_model_cannot_use_are_refused_before_loading(tiny, tmp_path, capsys, monkeypatch,
                                                                          method, extra, phrase):
    from gelora import models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("loaded before the settings check"))
    fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o", method=method), *extra), phrase)
    assert not (tmp_path / "o").exists()


def test_an_interrupted_continuation_resumes_and_a_run_is_never_shortened(tiny, tmp_path, monkeypatch):
    from gelora.errors import GeloraError
    from gelora.train import runner

    runner.train(tiny_config(tiny, tmp_path / "run", epochs=1, checkpoint_every=1))
    step = runner.training_step

    def stop_at_step_6(batch, run, at):
        if at == 5:
            raise KeyboardInterrupt
        return step(batch, run, at)

    monkeypatch.setattr(runner, "training_step", stop_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        runner.train(tiny_config(tiny, tmp_path / "run", epochs=3, resume=True, checkpoint_every=1))
    monkeypatch.undo()
    assert not (tmp_path / "run" / "metrics.json").exists()  # the longer run is not finished
    done = runner.train(tiny_config(tiny, tmp_path / "run", epochs=3, resume=True, checkpoint_every=1))
    assert done["steps"] == 12 and len(done["history"]) == 3
    with pytest.raises(GeloraError, match="not shortened"):
        runner.train(tiny_config(tiny, tmp_path / "run", epochs=3, max_steps=6, resume=True, checkpoint_every=1))


def test_eval_batch_size_zero(tiny, tmp_path, capsys):
    fails_with(capsys, run_cli(tiny_config(tiny, tmp_path / "o"), "--eval-batch-size", "0"),
               "--eval-batch-size must be at least 1")


def test_eval_batch_size_defaults_to_batch_size_and_may_change_on_resume(tiny, tmp_path):
    config = tiny_config(tiny, tmp_path / "o")
    faster = tiny_config(tiny, tmp_path / "o", eval_batch_size=64)
    assert (config.evaluation_batch_size, faster.evaluation_batch_size) == (config.batch_size, 64)
    assert faster.run_identity() == config.run_identity()  # only evaluation speed differs
