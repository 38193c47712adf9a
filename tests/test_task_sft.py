"""``--task sft``: a decoder trained on the completion tokens, evaluated by completion loss and generation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from helpers import tiny_config

from gelora.cli import main
from gelora.errors import GeloraError
from gelora.train import runner
from gelora.train.config import DataOptions


def sft_config(chat_model, out, **data):
    options = DataOptions(data=chat_model["data"], prompt_column="question", completion_column="answer", **data)
    return tiny_config(chat_model, out, task="sft", data_options=options, epochs=1, max_length=48)


@pytest.mark.parametrize("method", ["lora", "gelora", "geolora"])
def test_sft_trains_on_completions_and_scores_loss_and_generations(chat_model, tmp_path, method):
    config = sft_config(chat_model, tmp_path / "run", eval_generate=3, max_new_tokens=4)
    metrics = runner.train(replace(config, method=method, rank=None if method == "gelora" else config.rank))
    final = metrics["final"]
    assert metrics["metric"] == "loss" and final["perplexity"] == pytest.approx(2.718281828 ** final["loss"])
    assert metrics["best"]["loss"] == min(h["loss"] for h in metrics["history"])
    assert 0 <= final["exact_match"] <= 1 and metrics["eval_samples"] == 8  # the folder's test split
    generations = [json.loads(line) for line in (tmp_path / "run" / "generations.jsonl").read_text().splitlines()]
    assert len(generations) == 3 and all("####" in g["reference"] for g in generations)
    saved = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert saved["task_type"] == "CAUSAL_LM" or method == "geolora"
    assert set(saved["target_modules"]) <= {f"model.layers.{i}.{m}" for i in range(2) for m in
                                            ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                             "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")}


def test_packing_and_truncation_are_counted(chat_model, tmp_path):
    metrics = runner.train(sft_config(chat_model, tmp_path / "run", packing=True))
    assert metrics["packed_blocks"] < 24 and metrics["train_truncated"] == 0
    assert metrics["train_rows"] == 24 and metrics["train_samples"] == metrics["packed_blocks"]
    short = runner.train(replace(sft_config(chat_model, tmp_path / "short"), max_length=12))
    assert short["train_truncated"] > 0


def test_sft_refuses_an_encoder_before_loading_it(tiny, tmp_path, capsys):
    argv = ["train", tiny["model"], "--task", "sft", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", "rows.jsonl"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs a decoder (causal) language model" in err and len(err.strip().splitlines()) == 1


def test_sft_needs_both_columns_or_neither(chat_model, tmp_path):
    options = DataOptions(data=chat_model["data"], prompt_column="question")
    with pytest.raises(GeloraError, match="go together"):
        runner.train(tiny_config(chat_model, tmp_path / "run", task="sft", data_options=options))


@pytest.mark.timeout(600)
def test_two_processes_train_like_one(chat_model, tmp_path):
    """torchrun with 2 gloo processes of 2 rows each = 1 process of 4 rows: same eval loss, same adapter."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    src = Path(__file__).resolve().parents[1] / "src"
    argv = ["train", chat_model["model"], "--task", "sft", "--method", "lora", "--data", chat_model["data"],
            "--prompt-column", "question", "--completion-column", "answer", "--rank", "4", "--lora-dropout", "0",
            "--max-length", "48", "--epochs", "1", "--no-progress"]
    env = os.environ | {"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "gelora",
                           *argv, "--batch-size", "2", "--out", str(tmp_path / "two")], env=env, capture_output=True,
                          text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main([*argv, "--batch-size", "4", "--out", str(tmp_path / "one")]) == 0
    two, one = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("two", "one"))
    assert two["num_processes"] == 2 and two["steps"] == one["steps"] == 6
    assert two["final"]["loss"] == pytest.approx(one["final"]["loss"], rel=1e-5)
    weights = [load_file(tmp_path / run / "adapter" / "adapter_model.safetensors") for run in ("two", "one")]
    for name in weights[1]:
        assert torch.allclose(weights[0][name], weights[1][name], rtol=1e-5, atol=5e-6), name


def test_the_summary_says_how_many_rows_max_length_cut(chat_model, tmp_path, capsys):
    argv = ["train", chat_model["model"], "--task", "sft", "--method", "lora", "--data", chat_model["data"],
            "--prompt-column", "question", "--completion-column", "answer", "--rank", "2", "--max-steps", "1",
            "--no-progress", "--max-length", "20", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_truncated"] > 0  # 20 tokens cut every templated row
    assert len(lines) == 2 and lines[1].startswith("  at --max-length 20: ")
    dropped = f" ({metrics['train_dropped']} of them dropped: no answer token left)" if metrics["train_dropped"] else ""
    assert f"{metrics['train_truncated']} training rows cut{dropped}" in lines[1]


def test_a_run_on_conversations_generates_and_predicts_from_conversations(chat_model, tmp_path):
    """--eval-generate answers each conversation before its last assistant turn, scored against that turn; predict
    answers a messages file the same way (and a conversation that ends with a user turn as it is)."""
    from pathlib import Path

    folder = tmp_path / "chats"
    folder.mkdir()
    for split in ("train", "test"):
        rows = [json.loads(line) for line in (Path(chat_model["data"]) / f"{split}.jsonl").read_text().splitlines()]
        chats = [{"messages": [{"role": "user", "content": r["question"]},
                               {"role": "assistant", "content": r["answer"]}]} for r in rows]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    options = DataOptions(data=str(folder), eval_generate=2, max_new_tokens=4)
    metrics = runner.train(tiny_config(chat_model, tmp_path / "run", task="sft", data_options=options, epochs=1,
                                       max_length=48, max_eval_samples=None))
    chats = [json.loads(line)["messages"] for line in (folder / "test.jsonl").read_text().splitlines()]
    generations = [json.loads(line) for line in (tmp_path / "run" / "generations.jsonl").read_text().splitlines()]
    assert [g["prompt"] for g in generations] == [c[:1] for c in chats[:2]]
    assert [g["reference"] for g in generations] == [c[1]["content"] for c in chats[:2]]
    assert 0 <= metrics["final"]["exact_match"] <= 1  # the references end "#### n"
    asked = tmp_path / "asked.jsonl"
    asked.write_text(json.dumps({"messages": chats[0]}) + "\n" + json.dumps({"messages": chats[1][:1]}) + "\n")
    out = tmp_path / "answers.jsonl"
    assert main(["predict", str(tmp_path / "run"), "--data", str(asked), "--out", str(out)]) == 0
    predicted = [json.loads(line) for line in out.read_text().splitlines()]
    assert predicted == [{"prompt": g["prompt"], "generated": g["generated"]} for g in generations]


def test_a_bad_row_is_named_by_its_place_in_the_file_also_with_an_eval_fraction(chat_model, tmp_path, capsys):
    from pathlib import Path

    rows = [json.loads(line) for line in (Path(chat_model["data"]) / "train.jsonl").read_text().splitlines()]
    rows[5]["answer"] = " "
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["train", chat_model["model"], "--task", "sft", "--method", "lora", "--data", str(data),
            "--prompt-column", "question", "--completion-column", "answer", "--out", str(tmp_path / "run")]
    assert main(argv) == 2  # held-out rows are drawn by a seeded shuffle: the check comes before it
    assert "row 5: empty completion" in capsys.readouterr().err


def test_evaluation_conversations_are_checked_and_cut_before_training(chat_model, tmp_path, capsys, monkeypatch):
    """A conversation that goes on after its last answer is scored against that answer; one without a user turn
    before it is refused when the data are read, not after an epoch."""
    from gelora.train.tasks.sft import SupervisedFineTuning
    from gelora.train.tasks.sft_data import split_conversation

    user, answer = {"role": "user", "content": "how many ?"}, {"role": "assistant", "content": "#### 3"}
    more = [user, answer, {"role": "user", "content": "and now ?"}]
    assert split_conversation(more, 0, answered=True) == ([user], "#### 3")
    assert split_conversation(more, 0) == (more, None)  # predict: answer the last user turn
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"messages": [user, answer]}) + "\n" for _ in range(8)))
    bad = tmp_path / "eval.jsonl"
    bad.write_text(json.dumps({"messages": more}) + "\n" + json.dumps({"messages": [answer]}) + "\n")
    monkeypatch.setattr(SupervisedFineTuning, "build_model", lambda self: pytest.fail("refused too late"))
    argv = ["train", chat_model["model"], "--task", "sft", "--method", "lora", "--data", str(train), "--eval-data",
            str(bad), "--eval-generate", "2", "--out", str(tmp_path / "run"), "--max-length", "48"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "row 1: 'messages'" in err and len(err.strip().splitlines()) == 1
