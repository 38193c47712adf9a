"""Tiny randomly initialised models of every supported family, and seeded synthetic texts (no downloads)."""

from __future__ import annotations

import random

import pytest
import transformers as tf

VOCAB = 30522  # the MiniLM tokenizer's vocabulary, used with every tiny model
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=VOCAB)
DECODER = dict(SMALL, num_key_value_heads=1)

CONFIGS = {
    "bert": lambda: tf.BertConfig(**SMALL),
    "roberta": lambda: tf.RobertaConfig(**SMALL, pad_token_id=0),
    "deberta-v2": lambda: tf.DebertaV2Config(**SMALL),
    "distilbert": lambda: tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=37, vocab_size=VOCAB),
    "gpt2": lambda: tf.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB, bos_token_id=101, eos_token_id=102),
    "llama": lambda: tf.LlamaConfig(**DECODER),
    "mistral": lambda: tf.MistralConfig(**DECODER),
    "qwen2": lambda: tf.Qwen2Config(**DECODER),
}
# Linear layers per block: attention q/k/v/o + MLP (GPT-2 fuses q/k/v into c_attn; Llama-likes have a gated MLP).
TARGETS_PER_BLOCK = {"bert": 6, "roberta": 6, "deberta-v2": 6, "distilbert": 6, "gpt2": 4, "llama": 7, "mistral": 7, "qwen2": 7}
FAMILIES = list(CONFIGS)

WORDS = "the a cat dog runs sleeps quickly under over river house green small big red old new sees eats".split()


def tiny_model(family: str, head: bool = False, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    cls = tf.AutoModelForSequenceClassification if head else tf.AutoModel
    return cls.from_config(CONFIGS[family]()).eval()


def make_texts(n: int, pairs: bool = False, seed: int = 0) -> list[tuple[str, ...]]:
    """Random word sequences of 3-20 words, so batches mix lengths and padding."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20)))

    return [(sentence(), sentence()) if pairs else (sentence(),) for _ in range(n)]


@pytest.fixture(scope="session")
def tokenizer():
    from gelora.models import load_tokenizer

    return load_tokenizer("minilm")
