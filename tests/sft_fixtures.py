"""A tiny word-level tokenizer with a chat template and a tiny random Llama for the SFT tests (no downloads)."""

from __future__ import annotations

import random

import torch

# Token 0 is a plain word: a model whose logits are all equal generates it (greedy argmax takes the first).
WORDS = "seven the a cat dog runs sleeps over river house green small big red old sees eats how many apples".split()
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

    vocab = {w: i for i, w in enumerate(WORDS + DIGITS + [".", ",", "?", "####"])}
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
    """A 2-block Llama with hidden size 32 and random weights (the shape of tiny_models' decoders)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tiny_models import DECODER

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**DECODER, "vocab_size": vocab_size})).eval()


def sentence(rng: random.Random, lo: int = 3, hi: int = 10) -> str:
    return " ".join(rng.choice(WORDS[1:]) for _ in range(rng.randint(lo, hi)))


def prompt_completion_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": sentence(rng) + " ?", "completion": sentence(rng) + " #### " + str(rng.randint(0, 99))}
            for _ in range(n)]
