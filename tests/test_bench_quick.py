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
