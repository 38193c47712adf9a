"""Shared test helpers: tiny random models of every family, seeded texts, toy GLUE folders and a fake bench runner.

Plain functions and constants live here (parametrize lists need them at collection time); ``conftest.py`` turns the
costly ones into session fixtures. Everything is sized to run fast on 2 shared CPU cores.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path
from typing import Any

VOCAB = 30522  # the MiniLM tokenizer's vocabulary, used with every tiny model
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=VOCAB)
DECODER = dict(SMALL, num_key_value_heads=1)


def _configs() -> dict:
    import transformers as tf

    return {
        "bert": lambda: tf.BertConfig(**SMALL),
        "roberta": lambda: tf.RobertaConfig(**SMALL, pad_token_id=0),
        "deberta-v2": lambda: tf.DebertaV2Config(**SMALL),
        "distilbert": lambda: tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=37, vocab_size=VOCAB),
        "gpt2": lambda: tf.GPT2Config(
            n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB, bos_token_id=101, eos_token_id=102
        ),
        "llama": lambda: tf.LlamaConfig(**DECODER),
        "mistral": lambda: tf.MistralConfig(**DECODER),
        "qwen2": lambda: tf.Qwen2Config(**DECODER),
    }


# Linear layers per block: attention q/k/v/o + MLP (GPT-2 fuses q/k/v into c_attn; Llama-likes have a gated MLP).
TARGETS_PER_BLOCK = {
    "bert": 6, "roberta": 6, "deberta-v2": 6, "distilbert": 6, "gpt2": 4, "llama": 7, "mistral": 7, "qwen2": 7,
}
FAMILIES = list(TARGETS_PER_BLOCK)

TEXT_WORDS = "the a cat dog runs sleeps quickly under over river house green small big red old new sees eats".split()
TASK_WORDS = "the a movie film plot actor scene story music very quite really rather".split()


def family_config(family: str):
    """The Transformers config of the tiny random model of ``family`` (hidden 32, 2 layers)."""
    return _configs()[family]()


def tiny_model(family: str, head: bool = False, seed: int = 0):
    """A tiny randomly initialised model of ``family`` (with a classification head if ``head``), in eval mode."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    cls = tf.AutoModelForSequenceClassification if head else tf.AutoModel
    return cls.from_config(family_config(family)).eval()


def make_texts(n: int, pairs: bool = False, seed: int = 0) -> list[tuple[str, ...]]:
    """Random word sequences of 3-20 words, so batches mix lengths and padding."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(TEXT_WORDS) for _ in range(rng.randint(3, 20)))

    return [(sentence(), sentence()) if pairs else (sentence(),) for _ in range(n)]


def make_tiny_model(folder: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with the MiniLM tokenizer, saved like a Hub model."""
    import torch
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
    words = rng.choices(TASK_WORDS, k=rng.randint(3, 8))
    words.insert(rng.randrange(len(words) + 1), "good" if label else "bad")
    return " ".join(words)


def make_glue_dir(folder: Path, n_train: int = 48, n_eval: int = 24, seed: int = 0) -> Path:
    """Learnable toy versions of rte, mrpc (pairs, 2 classes), cola (single sentences) and stsb (pairs, regression)."""
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


LABELS = ("negative", "neutral", "positive")


def write_rows(path, n: int, seed: int = 0, labels=LABELS, regression: bool = False):
    """A csv (or jsonl) of ``text``, ``other`` and ``y``: the label word is in the text, so it can be learned."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.choices(TASK_WORDS, k=5) + [str(label)]
        rows.append({"text": " ".join(rng.sample(words, len(words))), "other": "x y", "y": i % 5 + 0.5
                     if regression else label})
    if path.suffix == ".csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_config(tiny: dict, out, **overrides):
    """A ``TrainConfig`` for a few quick steps on the ``tiny`` fixture's model and data."""
    from gelora.train.config import TrainConfig

    settings = dict(
        model=tiny["model"],
        task="glue/rte",
        method="lora",
        out=str(out),
        data_dir=tiny["data_dir"],
        rank=4,
        epochs=2,
        batch_size=8,
        max_length=24,
        max_train_samples=32,
        max_eval_samples=16,
        progress=False,
    )
    settings |= overrides
    methods = _method_registry()
    if settings["method"] in methods and not methods[settings["method"]].uses_rank:  # ranks from a plan, or none
        settings["rank"] = None
    return TrainConfig(**settings)


def _method_registry() -> dict:
    from gelora.train.methods import METHODS

    return METHODS


class FakeTrain:
    """Stands in for ``gelora.train.runner.train``: writes a plausible ``metrics.json`` and records each config."""

    def __init__(self, fail_on: str | None = None):
        self.configs: list[Any] = []
        self.fail_on = fail_on

    def __call__(self, config) -> dict[str, Any]:
        self.configs.append(config)
        if self.fail_on == config.method:
            raise RuntimeError(f"{config.method} exploded")
        metric = {"glue/rte": ("accuracy",), "glue/stsb": ("pearson", "spearman")}[config.task]
        score = 0.5 + 0.01 * config.seed + (0.05 if config.method == "gelora" else 0.0)
        final = {"epoch": 1.0, "train_loss": 0.7} | {m: score for m in metric}
        metrics = {
            "task": config.task,
            "method": config.method,
            "seed": config.seed,
            "metric": metric[0],
            "best": final,
            "final": final,
            "history": [final],
            "trainable_params": 1000 * config.lora_rank + (50_000 if config.method == "full" else 0),
            "median_step_seconds": 0.1 + (0.05 if config.method == "adalora" else 0.0),
            "wall_seconds": 10.0 + (10.0 if config.method == "adalora" else 0.0),
            "steps": 2,
        }
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics))
        return metrics


def ok_row(
    task: str, method: str, seed: int, score: float, step: float = 1.0, wall: float = 5.0
) -> dict[str, Any]:
    """A finished ``results.jsonl`` row with only what the aggregation reads."""
    return {
        "task": task, "method": method, "seed": seed, "metric": "accuracy", "score": score, "secondary": None,
        "trainable_params": 10,
        "median_step_seconds": step, "wall_seconds": wall, "plan_seconds": 0.0, "status": "ok",
    }


# ---- SFT: a tiny word-level tokenizer with a chat template and a tiny random Llama (no downloads)

# Token 0 is a plain word: a model whose logits are all equal generates it (greedy argmax takes the first).
SFT_WORDS = "seven the a cat dog runs sleeps over river house green small big red old sees eats how many apples".split()
SPECIAL = ["<pad>", "<unk>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
DIGITS = [str(d) for d in range(10)]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
# The same rendering, with the assistant text marked for return_assistant_tokens_mask.
GENERATION_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "<|assistant|> {% generation %}{{ m['content'] }} <|end|>{% endgeneration %} "
    "{% else %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def make_tokenizer(chat_template: str | None = CHAT_TEMPLATE):
    """Words split on whitespace and punctuation, digits one by one; eos ``<eos>``, pad ``<pad>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SFT_WORDS + DIGITS + [".", ",", "?", "####"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tok.add_special_tokens({"additional_special_tokens": SPECIAL[3:]})
    tok.chat_template = chat_template
    return tok


def make_llama(vocab_size: int, seed: int = 0):
    """A 2-block Llama with hidden size 32 and random weights (the decoder shape of ``tiny_model``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**DECODER, "vocab_size": vocab_size})).eval()


def sentence(rng: random.Random, lo: int = 3, hi: int = 10) -> str:
    return " ".join(rng.choice(SFT_WORDS[1:]) for _ in range(rng.randint(lo, hi)))


def prompt_completion_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": sentence(rng) + " ?", "completion": sentence(rng) + " #### " + str(rng.randint(0, 99))}
            for _ in range(n)]


def make_sft_folder(root: Path, n_train: int = 24, n_eval: int = 8) -> dict[str, str]:
    """A saved tiny random Llama with a chat-template tokenizer under ``root/model``, and question/answer files
    (GSM8K's columns) under ``root/data``: ``{"model", "data_dir", "data"}`` for ``tiny_config``."""
    tok = make_tokenizer()
    make_llama(len(tok)).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    (root / "data").mkdir(exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_eval, 1)):
        rows = [{"question": r["prompt"], "answer": r["completion"]} for r in prompt_completion_rows(n, seed)]
        (root / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"model": str(root / "model"), "data_dir": None, "data": str(root / "data")}


def load_script(name: str):
    """``benchmarks/<name>.py`` as a module (the benchmark scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
