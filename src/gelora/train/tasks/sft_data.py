"""Instruction-tuning (SFT) data: TRL's dataset formats, tokenisation with completion-only labels, packing.

Two formats, as in TRL's ``SFTTrainer``: a ``messages`` column (a list of ``{"role", "content"}`` turns; the loss
covers every assistant turn) or ``prompt`` + ``completion`` text columns (the loss covers the completion). Any two
text columns can stand for prompt and completion (GSM8K: ``question`` / ``answer``); :func:`load_sft_dataset`
renames them, so what it returns also goes straight into ``trl.SFTTrainer``.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass

from gelora.data import load_split
from gelora.errors import GeloraError

MESSAGES, PROMPT, COMPLETION = "messages", "prompt", "completion"
IGNORE_INDEX = -100  # the label transformers' causal-LM loss skips
# A chat template that marks assistant text with {% generation %} can report the assistant tokens itself.
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class SFTFormat:
    """Which columns hold the data: ``("messages",)`` or ``(prompt column, completion column)``."""

    kind: str  # MESSAGES or "prompt-completion"
    columns: tuple[str, ...]


@dataclass
class SFTData:
    """Tokenised SFT rows and what GeLoRA should profile.

    Attributes
    ----------
    rows : list of dict
        ``input_ids``, ``attention_mask`` and ``labels`` (token ids on completion / assistant tokens, -100 elsewhere),
        at most ``max_length`` tokens each.
    texts : list of tuple of str
        ``(prompt, completion)`` per kept row as the model sees them (chat template applied; ``prompt + completion``
        is the whole rendered text, before truncation).
    truncated : int
        Rows longer than ``max_length``, cut to it.
    dropped : int
        Rows left out because no completion token fits in ``max_length`` (they would add nothing to the loss).
    """

    rows: list[dict]
    texts: list[tuple[str, str]]
    truncated: int
    dropped: int


def detect_format(columns: Iterable[str], prompt_column: str | None = None, completion_column: str | None = None,
                  where: str = "the data") -> SFTFormat:
    """Find the SFT format from the column names (``where`` names the data in errors).

    Named prompt / completion columns win, then a ``messages`` column, then ``prompt`` + ``completion``.
    """
    columns = list(columns)
    if prompt_column or completion_column:
        if not (prompt_column and completion_column):
            raise GeloraError("give both --prompt-column and --completion-column, or neither")
        named = (prompt_column, completion_column)
        missing = [c for c in named if c not in columns]
        if missing:
            raise GeloraError(
                f"column(s) {', '.join(missing)} not in {where}; available: {', '.join(columns)}; give data with "
                "them, or (training) name others with --prompt-column/--completion-column"
            )
        return SFTFormat("prompt-completion", named)
    if MESSAGES in columns:
        return SFTFormat(MESSAGES, (MESSAGES,))
    if PROMPT in columns and COMPLETION in columns:
        return SFTFormat("prompt-completion", (PROMPT, COMPLETION))
    raise GeloraError(
        f"no SFT columns in {where} (found: {', '.join(columns)}); give a 'messages' column, 'prompt' + "
        "'completion' columns, or name two with --prompt-column/--completion-column"
    )


def load_sft_dataset(
    path_or_hub_id: str | os.PathLike,
    *,
    config: str | None = None,
    split: str = "train",
    prompt_column: str | None = None,
    completion_column: str | None = None,
):
    """Load one split of SFT data as a ``datasets.Dataset`` with the columns ``messages`` or ``prompt``/``completion``.

    Parameters
    ----------
    path_or_hub_id : str or path
        A ``.jsonl``/``.json``/``.csv``/``.parquet`` file (one split: ``split`` must be ``"train"``), a folder
        holding ``<split>.<ext>`` (e.g. ``gsm8k/test.jsonl``), or a Hub dataset id.
    config : str, optional
        Hub dataset configuration (e.g. ``"main"`` for ``openai/gsm8k``).
    split : str
    prompt_column, completion_column : str, optional
        Two text columns to use as prompt and completion (renamed to ``prompt`` / ``completion``).

    Raises
    ------
    GeloraError
        Data that cannot be read, lacks the columns, or holds a row that cannot be trained on.
    """
    dataset = load_split(path_or_hub_id, split, config)
    return sft_columns(dataset, prompt_column, completion_column, where=f"{path_or_hub_id} ({split})")


def sft_columns(dataset, prompt_column: str | None = None, completion_column: str | None = None, where: str = "the data"):
    """``dataset`` with only the columns ``messages``, or ``prompt`` / ``completion`` (renamed from the given ones),
    every row checked (``where`` names the data in errors)."""
    fmt = detect_format(dataset.column_names, prompt_column, completion_column, where)
    dataset = dataset.select_columns(list(fmt.columns))
    if fmt.kind != MESSAGES:
        renames = dict(zip(fmt.columns, (PROMPT, COMPLETION)))
        dataset = dataset.rename_columns({k: v for k, v in renames.items() if k != v})
        dataset = numbers_as_text(dataset, (PROMPT, COMPLETION))
    if len(dataset) == 0:
        raise GeloraError(f"{where} has no rows")
    for i, row in enumerate(dataset):
        check_row(row, i)
    return dataset


def numbers_as_text(dataset, columns: Iterable[str]):
    """``dataset`` with its numeric ``columns`` as text: a CSV column of answers such as 42 is read as numbers
    (floats when a cell is empty). Whole numbers read ``"42"``; an empty cell is refused, naming its row."""
    order = list(dataset.column_names)
    for column in columns:
        if not getattr(dataset.features[column], "dtype", "").startswith(("int", "uint", "float")):
            continue
        values = dataset[column]
        empty = next((i for i, v in enumerate(values) if v is None or v != v), None)  # v != v: NaN
        if empty is not None:
            raise _empty_cell(empty, column)
        texts = [str(int(v)) if float(v).is_integer() else str(v) for v in values]
        dataset = dataset.remove_columns(column).add_column(column, texts)
    return dataset.select_columns(order)


def _empty_cell(index: int, column: str) -> GeloraError:
    return GeloraError(f"row {index}: no {column} (an empty cell or null); fill or drop the row")


def check_row(row: dict, index: int) -> None:
    """Raise a GeloraError naming row ``index`` when it cannot be trained on (canonical columns)."""
    if MESSAGES in row:
        _check_messages(row[MESSAGES], index)
        return
    for column in (PROMPT, COMPLETION):
        value = row[column]
        if value is None:
            raise _empty_cell(index, column)
        if not isinstance(value, str):
            raise GeloraError(
                f"row {index}: the {column} is not text ({type(value).__name__} {value!r}); "
                "fill or drop the row (conversations go in a 'messages' column)"
            )
    if not row[COMPLETION].strip():
        raise GeloraError(f"row {index}: empty completion, nothing to train on; fill or drop the row")


def _check_turns(messages, index: int) -> None:
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
    ):
        raise GeloraError(f"row {index}: 'messages' must be a list of {{'role': str, 'content': str}} turns; fix the data")


def _check_messages(messages, index: int) -> None:
    _check_turns(messages, index)
    if not any(m["role"] == "assistant" for m in messages):
        raise GeloraError(f"row {index}: 'messages' has no assistant turn to train on; add one or drop the row")
    if messages[0]["role"] == "assistant":
        # Nothing to condition on; chat templates cannot render the empty conversation before it either.
        raise GeloraError(f"row {index}: 'messages' starts with an assistant turn; put a user turn before it")


def has_chat_template(tokenizer) -> bool:
    """Whether ``tokenizer`` carries a chat template (then prompts are rendered as chat turns)."""
    return bool(getattr(tokenizer, "chat_template", None))


def end_of_turn_id(tokenizer) -> int | None:
    """The special token the chat template puts right after an assistant's text (``<|im_end|>``, ``<|eot_id|>``).

    Training puts it in the loss, so a fine-tuned model ends its answers with it, also where it is not the
    tokenizer's eos (a base model given a chat template): generation stops there. None without a chat template or
    when no special token follows the assistant's text.
    """
    if not has_chat_template(tokenizer):
        return None
    answer = "42"
    text = _chat_text(tokenizer, user_turn("?") + [{"role": "assistant", "content": answer}])
    if answer not in text:
        return None
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    after = tokenizer(text[text.rindex(answer) + len(answer) :], add_special_tokens=False)["input_ids"]
    return next((i for i in after if i in special), None)


def user_turn(prompt: str) -> list[dict]:
    """``prompt`` as a one-turn conversation."""
    return [{"role": "user", "content": prompt}]


def split_conversation(messages, index: int, answered: bool = False) -> tuple[list[dict], str | None]:
    """``(prompt, reference)``: the turns before the last assistant turn, and that turn's text.

    With ``answered`` (evaluation: the reference is needed), the cut is always before the last assistant turn. Else
    (``predict``) a conversation that ends with a user turn is a prompt as it is, with reference None.
    """
    _check_turns(messages, index)
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None and answered:
        raise GeloraError(f"row {index}: 'messages' has no assistant turn to score an answer against; add one")
    if last is None or (last < len(messages) - 1 and not answered):
        prompt, reference = list(messages), None
    else:
        prompt, reference = list(messages[:last]), messages[last]["content"]
    if not any(m["role"] == "user" for m in prompt):
        raise GeloraError(f"row {index}: 'messages' has no user turn before the answer to generate; add one")
    return prompt, reference


def prompt_ids(tokenizer, prompt: str | list[dict]) -> list[int]:
    """The token ids a model is given before its completion: what training conditions on and generation starts from.

    With a chat template, the prompt as one user turn (or the conversation ``prompt`` is) plus the generation prompt;
    without one, the plain tokenised prompt (with the tokenizer's special tokens, e.g. BOS).
    """
    if has_chat_template(tokenizer):
        turns = prompt if isinstance(prompt, list) else user_turn(prompt)
        return _chat_ids(tokenizer, turns, add_generation_prompt=True)
    if isinstance(prompt, list):
        raise GeloraError("conversations (messages) need a tokenizer with a chat template to be answered")
    return tokenizer(prompt)["input_ids"]


def _chat_ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])


def _chat_text(tokenizer, messages: list[dict], **kwargs) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


def tokenize_sft(rows, tokenizer, max_length: int) -> SFTData:
    """Tokenise SFT rows with labels on completion / assistant tokens only.

    With a chat template, prompt / completion rows become a user and an assistant turn, and ``messages`` rows are
    rendered whole with the loss on every assistant turn (the assistant's end-of-turn tokens included, so the model
    learns to stop). Without one, a row is ``prompt + completion + eos`` (``messages`` need a template).

    Parameters
    ----------
    rows : datasets.Dataset or list of dict
        Columns ``messages`` or ``prompt`` + ``completion`` (what :func:`load_sft_dataset` returns).
    tokenizer : transformers.PreTrainedTokenizerBase
    max_length : int
        Longer rows are cut to this many tokens and counted in ``truncated``.

    Returns
    -------
    SFTData
        Rows, the texts to profile, and the truncated / dropped counts.
    """
    if max_length < 1:
        raise GeloraError(f"max_length must be at least 1, got {max_length}")
    if len(rows) == 0:
        raise GeloraError("no SFT rows to tokenise; check the data file or split")
    fmt = detect_format(rows.column_names if hasattr(rows, "column_names") else rows[0].keys())
    chat = has_chat_template(tokenizer)
    if fmt.kind == MESSAGES and not chat:
        raise GeloraError(
            "the tokenizer has no chat template, which 'messages' data needs; use a chat model's tokenizer, "
            "set tokenizer.chat_template, or give prompt/completion columns"
        )
    if not chat and tokenizer.eos_token_id is None:
        raise GeloraError("the tokenizer has no eos token to end completions with; set tokenizer.eos_token")
    out = SFTData([], [], 0, 0)
    for i, row in enumerate(rows):
        check_row(row, i)
        if fmt.kind == MESSAGES:
            ids, labels, texts = _encode_chat(tokenizer, row[MESSAGES], i)
        elif chat:
            turns = user_turn(row[PROMPT]) + [{"role": "assistant", "content": row[COMPLETION]}]
            ids, labels, texts = _encode_chat(tokenizer, turns, i)
        else:
            ids, labels, texts = _encode_plain(tokenizer, row[PROMPT], row[COMPLETION])
        if len(ids) > max_length:
            out.truncated += 1
            ids, labels = ids[:max_length], labels[:max_length]
        if all(label == IGNORE_INDEX for label in labels):
            out.dropped += 1
            continue
        out.rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
        out.texts.append(texts)
    return out


def _encode_plain(tokenizer, prompt: str, completion: str):
    # Tokenised apart, so the training prompt is token for token what generation starts from (prompt_ids).
    head = prompt_ids(tokenizer, prompt)
    tail = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return head + tail, [IGNORE_INDEX] * len(head) + tail, (prompt, completion + tokenizer.eos_token)


def _encode_chat(tokenizer, messages: list[dict], index: int):
    assistant = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
    ids = _chat_ids(tokenizer, messages)
    if GENERATION_TAG.search(tokenizer.chat_template):
        mask = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )["assistant_masks"]
    else:
        mask = [0] * len(ids)
        for k in assistant:
            start = _prefix_length(tokenizer, messages[:k], ids, index, add_generation_prompt=True)
            last = k + 1 == len(messages)  # then the head is the whole conversation: no second tokenisation
            end = len(ids) if last else _prefix_length(tokenizer, messages[: k + 1], ids, index)
            mask[start:end] = [1] * (end - start)
    if not any(mask):
        raise GeloraError(
            f"row {index}: the chat template renders no assistant tokens; fix its {{% generation %}} markers"
        )
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask)]
    prompt = _chat_text(tokenizer, messages[: assistant[0]], add_generation_prompt=True)
    text = _chat_text(tokenizer, messages)
    return ids, labels, (prompt, text[len(prompt) :])


def _prefix_length(tokenizer, head: list[dict], ids: list[int], index: int, **kwargs) -> int:
    """Tokens of the conversation ``head`` rendered alone, checked to be a prefix of the whole conversation's."""
    prefix = _chat_ids(tokenizer, head, **kwargs)
    if ids[: len(prefix)] != prefix:
        raise GeloraError(
            f"row {index}: the chat template renders the first {len(head)} turn(s) differently alone than inside "
            "the whole conversation, so the assistant tokens cannot be found; use a template that marks them "
            "with {% generation %}"
        )
    return len(prefix)


def pack(rows: list[dict], max_length: int, pad_token_id: int = 0) -> list[dict]:
    """Pack tokenised rows into blocks of exactly ``max_length`` tokens (best-fit decreasing, rows never split).

    Each block has ``input_ids``, ``labels`` and ``position_ids`` that restart at 0 for every row (the rest of the
    block is padding with label -100), and no ``attention_mask``. From such position ids transformers builds a
    block-diagonal causal mask (models using ``masking_utils.create_causal_mask``: Llama, Mistral, Qwen2 ...), so no
    row attends to another and the summed loss equals that of the rows trained one by one. This holds only when the
    forward pass gets ``use_cache=False`` (a cache, which ``config.use_cache`` creates even in training, turns the
    detection off) and no attention mask: collate with ``transformers.default_data_collator``. Otherwise rows in a
    block attend to the rows before them, the common approximation of packed training.
    """
    lengths = [len(r["input_ids"]) for r in rows]
    too_long = next((i for i, n in enumerate(lengths) if n > max_length), None)
    if too_long is not None:
        raise GeloraError(
            f"row {too_long} has {lengths[too_long]} tokens, more than the block length {max_length}; "
            "tokenise with the same max_length"
        )
    blocks: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, block index), sorted: the tightest block that fits comes first
    for i in sorted(range(len(rows)), key=lambda i: -lengths[i]):
        k = bisect_left(free, (lengths[i], -1))
        if k == len(free):
            blocks.append([i])
            insort(free, (max_length - lengths[i], len(blocks) - 1))
        else:
            room, b = free.pop(k)
            blocks[b].append(i)
            insort(free, (room - lengths[i], b))
    return [_join(rows, block, max_length, pad_token_id) for block in blocks]


def _join(rows: list[dict], block: list[int], max_length: int, pad_token_id: int) -> dict:
    ids, labels, positions = [], [], []
    for i in block:
        n = len(rows[i]["input_ids"])
        ids += rows[i]["input_ids"]
        # Label 0 of a row is never predicted unpacked; packed it would be, from the previous row's last token.
        labels += [IGNORE_INDEX] + list(rows[i]["labels"][1:])
        positions += range(n)
    pad = max_length - len(ids)
    return {
        "input_ids": ids + [pad_token_id] * pad,
        "labels": labels + [IGNORE_INDEX] * pad,
        "position_ids": positions + list(range(pad)),
    }
