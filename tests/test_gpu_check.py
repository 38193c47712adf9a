"""The Python steps of ``benchmarks/gpu_check.sh`` (``gpu_check.py``, ``throughput_table.py``, ``bench_id.py``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check, throughput_table, bench_id = _load("gpu_check"), _load("throughput_table"), _load("bench_id")


def test_llama_1b_has_the_parameters_of_llama_3_2_1b():
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = LlamaForCausalLM(LlamaConfig(**gpu_check.LLAMA_1B))
    assert sum(p.numel() for p in model.parameters()) == 1_235_814_400  # meta-llama/Llama-3.2-1B


def test_float32_casts_float_weights_and_keeps_the_rest(tmp_path):
    from safetensors.torch import load_file, save_file

    src = tmp_path / "src"
    src.mkdir()
    weights = {"w": torch.randn(3, 2, dtype=torch.float16), "ids": torch.arange(4)}
    save_file(weights, src / "model.safetensors")
    (src / "config.json").write_text("{}")
    gpu_check.float32(src, tmp_path / "dst")
    out = load_file(tmp_path / "dst" / "model.safetensors")
    assert out["w"].dtype == torch.float32 and torch.equal(out["w"], weights["w"].float())
    assert torch.equal(out["ids"], weights["ids"])
    assert (tmp_path / "dst" / "config.json").exists()
    assert load_file(src / "model.safetensors")["w"].dtype == torch.float16  # the source is left as it was


def test_gsm8k_takes_the_first_rows_of_each_split(tmp_path):
    src = tmp_path / "gsm8k"
    src.mkdir()
    for split in ("train", "test"):
        (src / f"{split}.jsonl").write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10)))
    gpu_check.gsm8k(src, tmp_path / "out", train=4, evaluation=2)
    rows = {s: [json.loads(x)["i"] for x in (tmp_path / "out" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "test")}
    assert rows == {"train": [0, 1, 2, 3], "test": [0, 1]}


def _metrics(folder: Path, packing: bool) -> Path:
    folder.mkdir()
    metrics = {"num_processes": 2, "median_step_seconds": 0.5, "peak_memory_mb": 2048.0, "wall_seconds": 10.0,
               "metric": "loss", "final": {"loss": 1.25},
               "config": {"batch_size": 4, "max_length": 1024, "data_options": {"packing": packing}}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_throughput_counts_token_positions_of_packed_runs_only(tmp_path):
    packed = throughput_table.row("p", _metrics(tmp_path / "p", packing=True)).split(" | ")
    plain = throughput_table.row("q", _metrics(tmp_path / "q", packing=False)).split(" | ")
    # 4 rows x 2 processes / 0.5 s = 16 blocks/s of 1,024 positions
    assert packed[4:7] == ["16.0", "16,384", "2.0"]
    assert plain[5] == "-"


def test_bench_id_shapes_and_references():
    args = bench_id.argparse.Namespace(shapes="10000x768,100000X4096", sizes="1", dims="2")
    assert bench_id.shapes(args) == [(10000, 768), (100000, 4096)]
    assert bench_id.shapes(bench_id.argparse.Namespace(shapes=None, sizes="1,2", dims="3")) == [(1, 3), (2, 3)]
    assert list(bench_id.references("skdim")) == ["skdim"] and bench_id.references("") == {}
    with pytest.raises(SystemExit, match="unknown dadapi"):
        bench_id.references("skdim,dadapi")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GEMM floor times a CUDA matmul")
def test_gemm_floor_is_positive_and_restores_the_matmul_setting():
    settings = torch.backends.cuda.matmul
    settings.allow_bf16_reduced_precision_reduction = True
    X = torch.randn(4096, 256, device="cuda")
    assert 0 < bench_id.gemm_floor(X, rows=1024) < 1.0
    assert settings.allow_bf16_reduced_precision_reduction is True
