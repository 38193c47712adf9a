"""``gelora bench --quick`` end to end: the real runner on a tiny random BERT and the local GLUE files."""

from __future__ import annotations

import json

from gelora.cli import main


def test_quick_bench_end_to_end(tmp_path, tiny, glue_dir, capsys):
    model = tiny["model"]
    out = tmp_path / "bench"
    argv = [
        "bench", "--quick", "--model", model, "--tasks", "stsb", "--budget-rank", "2", "--out", str(out),
        "--data-dir", str(glue_dir), "--methods", "lora,gelora,gelora-lb,gelora:pooling=mean,adalora,eva,full",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and all(r["status"] == "ok" for r in rows)
    assert {r["seed"] for r in rows} == {0} and {r["train_samples"] for r in rows} == {64}
    by = {(r["task"], r["method"]): r for r in rows}
    # budget matching: GeLoRA spends LoRA's adapter parameters (within one block's rounding), the lower bound less
    lora, gelora = by["stsb", "lora"]["adapter_params"], by["stsb", "gelora"]["adapter_params"]
    assert abs(gelora - lora) / lora < 0.1
    assert by["stsb", "gelora-lb"]["adapter_params"] != gelora
    assert by["stsb", "full"]["trainable_params"] > by["stsb", "lora"]["trainable_params"]
    md = (out / "results.md").read_text()
    assert "gelora:pooling=mean" in md and "### Mean across tasks" in md
    assert (out / "pareto.png").exists()
    # a second call trains nothing
    assert main(argv) == 0
    assert "done earlier, skipped" in capsys.readouterr().err


def test_quick_bench_on_a_classification_file(tiny, tmp_path, capsys):
    from helpers import write_rows

    rows = write_rows(tmp_path / "reviews.csv", 40)
    out = tmp_path / "bench"
    argv = ["bench", "--quick", "--model", tiny["model"], "--tasks", f"rte,classify:{rows}", "--methods",
            "lora,gelora", "--budget-rank", "2", "--text-columns", "text", "--label-column", "y", "--out", str(out),
            "--data-dir", tiny["data_dir"]]
    assert main(argv) == 0, capsys.readouterr().err
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["method"]) for r in results} == {(t, m) for t in ("rte", f"classify:{rows}")
                                                            for m in ("lora", "gelora")}
    assert {r["metric"] for r in results if r["task"] != "rte"} == {"accuracy"}
    assert {r["secondary_metric"] for r in results if r["task"] != "rte"} == {"macro_f1"}
    assert f"### classify:{rows} (accuracy, macro_f1" in (out / "results.md").read_text()


def test_bench_task_names(tmp_path):
    import pytest

    from gelora.bench.tasks import parse_task
    from gelora.errors import GeloraError

    glue = tmp_path / "data" / "glue"
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    assert parse_task("rte", glue).task == "glue/rte"
    sft = parse_task("sft:gsm8k", glue, {"sft": {"prompt_column": "q", "completion_column": "a"}})
    # a known data set keeps its own columns; a file takes the user's
    assert (sft.task, sft.data.data, sft.data.prompt_column) == ("sft", str(tmp_path / "data" / "gsm8k"), "question")
    hub = parse_task("qa:squad_v2", glue)  # no local folder: the Hub
    assert (hub.task, hub.data.data) == ("squad_v2", "rajpurkar/squad_v2")
    # SQuAD's F1 is a percentage: the mean across tasks divides it by 100
    assert [parse_task(t, glue).score_scale for t in ("qa:squad_v2", "qa:mine.jsonl", "rte")] == [100, 100, 1]
    own = parse_task("sft:rows.jsonl", glue, {"sft": {"prompt_column": "q", "completion_column": "a"}})
    assert (own.data.prompt_column, own.data.completion_column) == ("q", "a")
    assert parse_task("classify:x.csv", glue, {"classify": {"label_column": "y"}}).data.label_column == "y"
    with pytest.raises(GeloraError, match="KIND:SOURCE"):
        parse_task("summarize:x.csv", glue)


def test_quick_bench_on_sft_gsm8k_beside_the_glue_folder(chat_model, tmp_path, capsys):
    import shutil
    from pathlib import Path

    glue = tmp_path / "data" / "glue"
    glue.mkdir(parents=True)
    shutil.copytree(Path(chat_model["data"]), tmp_path / "data" / "gsm8k")  # question / answer, as GSM8K's
    out = tmp_path / "bench"
    argv = ["bench", "--quick", "--model", chat_model["model"], "--tasks", "sft:gsm8k", "--methods", "lora,gelora",
            "--budget-rank", "2", "--max-length", "48", "--profile-samples", "24", "--data-dir", str(glue),
            "--eval-generate", "3", "--eval-batch-size", "3", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["method"], r["metric"], r["greater_is_better"], r["secondary_metric"]) for r in rows} == {
        ("sft:gsm8k", "lora", "loss", False, "exact_match"), ("sft:gsm8k", "gelora", "loss", False, "exact_match")}
    assert all(0.0 <= r["secondary"] <= 1.0 for r in rows)
    generations = (out / "runs" / "sft_gsm8k" / "lora" / "seed0" / "generations.jsonl").read_text().splitlines()
    assert len(generations) == 3
    report = (out / "results.md").read_text()
    # perplexity restates the loss: the table's second score is the exact match
    assert "### sft:gsm8k (loss, exact_match" in report and "Mean across tasks" not in report  # no loss averages
