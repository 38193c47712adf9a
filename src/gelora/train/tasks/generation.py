"""Generative evaluation: greedy answers from a causal LM, and GSM8K answer extraction and exact match."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import torch

from gelora.errors import GeloraError
from gelora.train.tasks.sft_data import end_of_turn_id, prompt_ids

# A number with thousands commas and decimals (".5" too); "18." ends before its period. A minus sign counts only
# where it cannot be a hyphen or a subtraction: "pages 10-12" ends with 12, not -12.
NUMBER = re.compile(r"(?:(?<![\w.])-)?(?:\d[\d,]*(?:\.\d+)?|(?<!\d)\.\d+)")
GSM8K_MARK = "####"


def gsm8k_answer(text: str) -> str | None:
    """The numeric answer in ``text``, canonical (``"1,000"`` -> ``"1000"``, ``"-3.50"`` -> ``"-3.5"``), or None.

    The first number after the last ``####`` when there is one (GSM8K references end ``#### <number>``), else the
    last number in the text (what a generation is scored on).
    """
    head, mark, tail = text.rpartition(GSM8K_MARK)
    numbers = NUMBER.findall(tail if mark else head + tail)
    if not numbers:
        return None
    number = Decimal((numbers[0] if mark else numbers[-1]).replace(",", ""))
    # normalize() drops trailing zeros; format "f" keeps 100 from becoming 1E+2.
    return format(number.normalize(), "f")


def exact_match(preds: list[str | None], refs: list[str | None]) -> float:
    """Fraction of ``preds`` equal to ``refs``: as numbers when both parse, else as strings; None never matches."""
    if len(preds) != len(refs) or not refs:
        raise GeloraError(f"exact_match needs as many predictions as references (got {len(preds)} and {len(refs)})")
    return sum(p is not None and r is not None and _same(p, r) for p, r in zip(preds, refs)) / len(refs)


def _same(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except InvalidOperation:
        return a.strip() == b.strip()


def generate_answers(model, tokenizer, prompts: list[str | list[dict]], max_new_tokens: int = 256,
                     batch_size: int = 8) -> list[str]:
    """Greedy completions of ``prompts``, decoded without the prompt and special tokens.

    Each prompt is what training conditioned on (:func:`gelora.train.tasks.sft_data.prompt_ids`: the chat template's
    user turn and generation prompt, or the plain prompt); batches are left-padded so every completion starts right
    after its own prompt. Generation stops at the tokenizer's or the model's eos token, or at the chat template's
    end-of-turn token (:func:`~gelora.train.tasks.sft_data.end_of_turn_id`).
    """
    if max_new_tokens < 1 or batch_size < 1:
        raise GeloraError(f"max_new_tokens and batch_size must be at least 1, got {max_new_tokens} and {batch_size}")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise GeloraError("the tokenizer has neither a pad nor an eos token; set tokenizer.pad_token")
    stop = model.generation_config.eos_token_id
    stop = [tokenizer.eos_token_id, end_of_turn_id(tokenizer)] + (stop if isinstance(stop, list) else [stop])
    stop = [t for t in dict.fromkeys(stop) if t is not None]
    was_training = model.training
    model.eval()
    answers = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = [prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
            width = max(map(len, batch))
            # Left padding: every prompt ends at the last column, where generation continues it.
            input_ids = torch.tensor([[pad_id] * (width - len(b)) + b for b in batch], device=model.device)
            attention_mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch], device=model.device)
            with torch.no_grad():
                out = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad_id,
                    eos_token_id=stop or None,
                )
            answers += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    finally:
        model.train(was_training)
    return answers
