"""``--task sft``: a decoder trained on the completion tokens, evaluated by completion loss and generation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from helpers import make_sft_folder, tiny_config

from gelora.cli import main
from gelora.errors import GeloraError
from gelora.train import runner
from gelora.train.config import DataOptions


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> dict[str, str]:
    """A saved tiny random Llama with a chat-template tokenizer, and question/answer files (GSM8K's columns)."""
    return make_sft_folder(tmp_path_factory.mktemp("sft"))


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
