"""Helpers of ``gpu_check.sh``: the steps that need Python.

    python benchmarks/gpu_check.py env                         # versions of what the check imports; fails if one is missing
    python benchmarks/gpu_check.py float32 SRC DST             # a model folder with its weights cast to float32
    python benchmarks/gpu_check.py llama DST --tokenizer SRC [--tiny]   # a random-init Llama, bfloat16
    python benchmarks/gpu_check.py gsm8k SRC DST --train N --eval N     # the first rows of GSM8K's two splits

Why ``float32``: ``.carry/minilm`` stores MiniLM's weights in float16 to fit the 64 MiB that travel, and
Transformers 5 loads a checkpoint in its stored dtype, so without the cast every run would train float16 weights
(the task head and ``full`` without loss scaling).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import sys
from pathlib import Path

# What gpu_check.sh imports (distribution names); the device image lacks some, which travel as wheels in .whl/.
PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "scikit-dimension", "scikit-learn", "scipy",
            "numpy", "pyarrow", "fsspec", "huggingface-hub", "safetensors", "tokenizers", "matplotlib")
IMPORTS = ("datasets", "skdim", "peft", "accelerate", "gelora.train.runner", "gelora.bench")

# Llama-3.2-1B's shape (1.24e9 parameters with tied embeddings); TINY is the test suite's 2-block decoder.
LLAMA_1B = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0,
                max_position_embeddings=4096)
LLAMA_TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=30522, max_position_embeddings=1024)


def env() -> None:
    """Print each package's version and whether the modules the parts use import; exit 1 naming what fails."""
    failed = []
    for name in PACKAGES:
        try:
            print(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            failed.append(f"{name} (not installed)")
    for module in IMPORTS:  # installed is not enough: a wheel may not work with the image's versions
        try:
            importlib.import_module(module)
        except Exception as e:  # any import failure is what this check is for
            failed.append(f"import {module}: {type(e).__name__}: {e}")
    import torch

    print(f"python {sys.version.split()[0]}; CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    if failed:
        sys.exit("failing: " + "; ".join(failed) + " (carry wheels in .whl, see gpu_check.sh)")


def float32(src: Path, dst: Path) -> None:
    """Copy the model folder ``src`` to ``dst`` with every floating-point weight cast to float32."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst, dirs_exist_ok=True)
    for path in dst.glob("*.safetensors"):
        weights = {k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}
        save_file(weights, path, metadata={"format": "pt"})


def llama(dst: Path, tokenizer: str, tiny: bool) -> None:
    """Save a randomly initialised Llama (bfloat16 weights) and ``tokenizer`` (eos set if it has none) in ``dst``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from gelora.models import load_tokenizer

    tok = load_tokenizer(tokenizer)
    if tok.eos_token is None:  # BERT-style tokenizers: SFT ends each completion with eos
        tok.eos_token = tok.sep_token
    config = LlamaConfig(**(LLAMA_TINY if tiny else LLAMA_1B), pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=tok.cls_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # initialising 1.2e9 weights is faster there
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(dst)
    tok.save_pretrained(dst)
    print(f"{dst}: Llama, {sum(p.numel() for p in model.parameters()) / 1e9:.3f}e9 parameters, bfloat16")


def gsm8k(src: Path, dst: Path, train: int, evaluation: int) -> None:
    """The first ``train`` / ``evaluation`` rows of ``src``/{train,test}.jsonl into ``dst`` (a few hundred kB)."""
    dst.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("test", evaluation)):
        with open(src / f"{split}.jsonl") as f:
            (dst / f"{split}.jsonl").write_text("".join(line for _, line in zip(range(n), f)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("env")
    p = sub.add_parser("float32")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p = sub.add_parser("llama")
    p.add_argument("dst", type=Path)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--tiny", action="store_true")
    p = sub.add_parser("gsm8k")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--train", type=int, default=2048)
    p.add_argument("--eval", type=int, default=64)
    args = ap.parse_args()
    if args.command == "env":
        env()
    elif args.command == "float32":
        float32(args.src, args.dst)
    elif args.command == "llama":
        llama(args.dst, args.tokenizer, args.tiny)
    else:
        gsm8k(args.src, args.dst, args.train, args.eval)


if __name__ == "__main__":
    main()
