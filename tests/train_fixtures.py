"""Tiny models and GLUE-shaped data for the training tests (fast on 2 CPU cores)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

torch.set_num_threads(1)  # tiny models: threads only add overhead, and the machine may be shared

WORDS = "the a movie film plot actor scene story music very quite really rather".split()


def make_tiny_model(folder: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with the MiniLM tokenizer, saved like a Hub model."""
    from transformers import BertConfig, BertModel

    from gelora.models import load_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer("minilm")
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=len(tokenizer),
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _sentence(rng: random.Random, label: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(3, 8))
    words.insert(rng.randrange(len(words) + 1), "good" if label else "bad")
    return " ".join(words)


def make_glue_dir(folder: Path, n_train: int = 48, n_eval: int = 24, seed: int = 0) -> Path:
    """Learnable toy versions of rte (pairs, 2 classes), cola (single sentences) and stsb (pairs, regression)."""
    rng = random.Random(seed)
    for task in ("rte", "cola", "stsb", "mrpc"):
        for split, n in (("train", n_train), ("validation", n_eval)):
            rows = []
            for i in range(n):
                label = i % 2
                if task == "cola":
                    row = {"sentence": _sentence(rng, label), "label": label}
                else:
                    row = {"sentence1": _sentence(rng, label), "sentence2": _sentence(rng, 1 - label), "label": label}
                    if task == "stsb":
                        row["label"] = round(label * 4 + rng.random(), 2)
                rows.append(row | {"idx": i})
            path = folder / task / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
