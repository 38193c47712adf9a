"""Extractive question answering (SQuAD v1.1/v2.0): sliding-window features and span post-processing.

The standard Hugging Face recipe: each (question, context) pair becomes one or more windows of at most
``max_length`` tokens whose contexts overlap by ``doc_stride`` tokens. Training windows carry the answer's start
and end token (the CLS token when the window does not hold the whole answer, or there is none); evaluation windows
keep their example id and the character offsets of their context tokens so that predicted spans map back to text.

``examples`` is a ``datasets.Dataset``, a dict of columns (what ``Dataset.map(batched=True)`` passes) or a list of
row dicts, with the SQuAD columns ``id, context, question, answers={"text": [...], "answer_start": [...]}``.
Run ``check_answers`` once on a split before tokenising it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from numbers import Integral
from typing import Any

import numpy as np

from gelora.errors import GeloraError

COLUMNS = ("id", "context", "question", "answers")
# Columns of the evaluation features that post-processing needs and the model must not receive.
EVAL_ONLY_COLUMNS = ("example_id", "offset_mapping", "cls_index")


def _columns(examples, names: Sequence[str]) -> dict[str, list]:
    if isinstance(examples, Sequence):
        return {name: [row[name] for row in examples] for name in names}
    return {name: list(examples[name]) for name in names}


def _column_names(examples) -> set[str]:
    if isinstance(examples, Sequence):
        # An empty list lacks no column, only rows (which check_answers reports).
        return set.intersection(*(set(row) for row in examples)) if examples else set(COLUMNS)
    return set(getattr(examples, "column_names", None) or examples.keys())


def _row_problem(context, question, answers) -> str | None:
    """What is wrong with one row, or None."""
    if not isinstance(context, str) or not isinstance(question, str):
        return "'context' and 'question' must be strings"
    if not isinstance(answers, Mapping) or not {"text", "answer_start"} <= set(answers):
        return "'answers' must be a dict with 'text' and 'answer_start' lists"
    texts, starts = answers["text"], answers["answer_start"]
    if not isinstance(texts, Sequence) or not isinstance(starts, Sequence) or len(texts) != len(starts):
        return "'answers' must hold 'text' and 'answer_start' lists of the same length"
    for text, start in zip(texts, starts):
        if not isinstance(text, str) or not text or isinstance(start, bool) or not isinstance(start, Integral):
            return f"answer {text!r} at {start!r} must be a non-empty string at an integer character offset"
        if start < 0 or context[start : start + len(text)] != text:
            found = context[max(start, 0) : max(start, 0) + len(text)]
            return f"answer {text!r} does not start at character {start} of the context (found {found!r})"
    return None


def check_answers(examples) -> None:
    """Check the SQuAD schema and that every answer's text sits at its ``answer_start`` in the context.

    Raises
    ------
    GeloraError
        Naming the first bad row: a missing column, a malformed ``answers``, an answer that does not match the
        context at its offset, or an id used twice (predictions are keyed by id).
    """
    missing = [name for name in COLUMNS if name not in _column_names(examples)]
    if missing:
        raise GeloraError(
            f"question answering data lacks the column(s) {', '.join(missing)}; "
            "use the SQuAD schema id, context, question, answers={'text': [...], 'answer_start': [...]}"
        )
    columns = _columns(examples, COLUMNS)
    if not columns["id"]:
        raise GeloraError("question answering data has no rows; check the data file and the split name")
    seen: set[str] = set()
    for row, (qid, context, question, answers) in enumerate(zip(*columns.values())):
        problem = "its id is used by an earlier row" if qid in seen else _row_problem(context, question, answers)
        if problem:
            raise GeloraError(f"question answering row {row} (id {qid!r}): {problem}; fix the data file")
        seen.add(qid)


def _check_windows(questions: list[str], tokenizer, max_length: int, doc_stride: int) -> None:
    """Fail early, with the fix, where the tokenizer would fail late (a Rust panic for a too-large stride)."""
    if not getattr(tokenizer, "is_fast", False):
        raise GeloraError("question answering needs a fast tokenizer (character offsets); load it with use_fast=True")
    if doc_stride < 0 or max_length <= 0:
        raise GeloraError(f"max_length ({max_length}) must be positive and doc_stride ({doc_stride}) non-negative")
    if not questions:
        return
    lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    longest = int(np.argmax(lengths))
    room = max_length - lengths[longest] - tokenizer.num_special_tokens_to_add(pair=True)
    if room <= doc_stride:
        raise GeloraError(
            f"--max-length {max_length} leaves {max(room, 0)} context tokens per window beside the longest question "
            f"({lengths[longest]} tokens: {questions[longest][:60]!r}), and a window needs more than --doc-stride "
            f"{doc_stride}; raise --max-length (to at least {max_length - room + doc_stride + 1}) or lower --doc-stride"
        )


def question_first(tokenizer) -> bool:
    """Whether a window is (question, context): yes, unless the tokenizer pads on the left (XLNet's convention,
    as in Transformers' run_qa), which puts the context first."""
    return tokenizer.padding_side == "right"


def _tokenize_windows(examples, tokenizer, max_length: int, doc_stride: int, names: Sequence[str]):
    """One encoding per window (question first unless the tokenizer pads on the left), with offsets."""
    columns = _columns(examples, names)
    # Leading spaces in some SQuAD questions only waste window room.
    questions = [question.lstrip() for question in columns["question"]]
    _check_windows(questions, tokenizer, max_length, doc_stride)
    first = question_first(tokenizer)
    pair = (questions, columns["context"]) if first else (columns["context"], questions)
    encoded = tokenizer(
        *pair,
        truncation="only_second" if first else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    return columns, encoded, 1 if first else 0


def window_collator(tokenizer) -> Callable[[list[dict]], Any]:
    """Collator that pads a batch of windows on the right, whatever the tokenizer's ``padding_side``.

    The answer span, ``cls_index`` and offsets count tokens from a window's start, so padding must come after the
    tokens (the attention mask hides it); left padding would shift a shorter window's positions by its padding.
    Cheaper than padding every window to ``max_length`` (run_qa's default), which also keeps positions valid.
    """
    return partial(tokenizer.pad, padding=True, padding_side="right", return_tensors="pt")


def _cls_index(input_ids: list[int], tokenizer) -> int:
    """Where the "no answer" token is: the CLS token, else BOS, else the first token."""
    for special in (tokenizer.cls_token_id, tokenizer.bos_token_id):
        if special is not None and special in input_ids:
            return input_ids.index(special)
    return 0


def _answer_tokens(offsets, sequence_ids, context_id: int, start_char: int, end_char: int) -> tuple[int, int] | None:
    """First and last token of the characters ``[start_char, end_char)`` when the window's context holds them all."""
    context_tokens = [k for k, seq in enumerate(sequence_ids) if seq == context_id]
    if not context_tokens:
        return None
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    start = max(k for k in range(first, last + 1) if offsets[k][0] <= start_char)
    end = min(k for k in range(first, last + 1) if offsets[k][1] >= end_char)
    return start, end


def prepare_train_features(examples, tokenizer, max_length: int, doc_stride: int) -> dict[str, list]:
    """Training windows with ``start_positions`` / ``end_positions`` of the (first) gold answer.

    Parameters
    ----------
    examples
        SQuAD rows (see the module docstring).
    tokenizer
        A fast tokenizer; its ``padding_side`` decides the order: question first when it pads on the right.
    max_length
        Tokens per window, question and special tokens included.
    doc_stride
        Context tokens shared by consecutive windows of one example.

    Returns
    -------
    dict
        The tokenizer's columns (``input_ids``, ``attention_mask``, ...; unpadded, for ``window_collator``) plus
        ``start_positions`` and ``end_positions``: the answer's token span, or the CLS index for both when the
        window does not hold the whole answer or the question has none.
    """
    columns, encoded, context_id = _tokenize_windows(examples, tokenizer, max_length, doc_stride, COLUMNS)
    sample_of = encoded.pop("overflow_to_sample_mapping")
    offsets_of = encoded.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offsets_of):
        answers = columns["answers"][sample_of[i]]
        span = None
        if answers["answer_start"]:
            start_char = answers["answer_start"][0]
            span = _answer_tokens(
                offsets, encoded.sequence_ids(i), context_id, start_char, start_char + len(answers["text"][0])
            )
        if span is None:
            cls = _cls_index(encoded["input_ids"][i], tokenizer)
            span = (cls, cls)
        starts.append(span[0])
        ends.append(span[1])
    return {**encoded, "start_positions": starts, "end_positions": ends}


def prepare_eval_features(examples, tokenizer, max_length: int, doc_stride: int) -> dict[str, list]:
    """Evaluation windows (the same windows as ``prepare_train_features``) that map back to their example.

    Returns
    -------
    dict
        The tokenizer's columns plus ``example_id`` (the row's ``id``), ``offset_mapping`` (character span of each
        context token, None for question and special tokens) and ``cls_index`` (the "no answer" token). Drop
        ``EVAL_ONLY_COLUMNS`` before the model's forward pass; keep them for ``postprocess_predictions``.
    """
    columns, encoded, context_id = _tokenize_windows(
        examples, tokenizer, max_length, doc_stride, ("id", "context", "question")
    )
    sample_of = encoded.pop("overflow_to_sample_mapping")
    encoded["example_id"] = [columns["id"][sample] for sample in sample_of]
    encoded["offset_mapping"] = [
        [tuple(offset) if seq == context_id else None for offset, seq in zip(offsets, encoded.sequence_ids(i))]
        for i, offsets in enumerate(encoded["offset_mapping"])
    ]
    encoded["cls_index"] = [_cls_index(ids, tokenizer) for ids in encoded["input_ids"]]
    return dict(encoded)


def _best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, offsets: list, n_best: int, max_answer_length: int
) -> tuple[float, tuple[int, int]] | None:
    """Score and character span of one window's best valid span among its ``n_best`` starts x ``n_best`` ends."""
    # Positions past the window's tokens (collator padding) are not candidates.
    start_logits, end_logits = start_logits[: len(offsets)], end_logits[: len(offsets)]
    starts = np.argsort(start_logits)[::-1][:n_best]
    ends = np.argsort(end_logits)[::-1][:n_best]
    in_context = np.array([offset is not None for offset in offsets])
    length = ends[None, :] - starts[:, None]
    valid = in_context[starts, None] & in_context[None, ends] & (length >= 0) & (length < max_answer_length)
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[starts, None] + end_logits[None, ends], -np.inf)
    start, end = np.unravel_index(np.argmax(scores), scores.shape)
    return float(scores[start, end]), (offsets[starts[start]][0], offsets[ends[end]][1])


def postprocess_predictions(
    examples,
    features,
    start_logits,
    end_logits,
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
    null_threshold: float = 0.0,
) -> dict[str, str]:
    """Answer text per example id from the start/end logits of its evaluation windows.

    Each window proposes spans from its ``n_best`` highest start and end logits, keeping those inside the context
    with ``start <= end`` and at most ``max_answer_length`` tokens; a span scores ``start + end`` logit and the
    best over all windows of the example wins. With ``version_2`` the null answer scores ``start + end`` logit of
    the CLS token, the minimum over the windows, and wins (prediction ``""``) when it beats the best span by more
    than ``null_threshold``. An example without any valid span gets ``""``.

    Parameters
    ----------
    examples
        The SQuAD rows the features came from (``id`` and ``context`` are used).
    features
        What ``prepare_eval_features`` returned (dict of columns, ``Dataset`` or list of rows), in logit order.
    start_logits, end_logits
        One row per feature, array ``(n_features, seq_len)`` or a list of 1-D arrays; a row may be longer than
        its feature (right padding). Left-padded logits must be un-padded first.
    n_best, max_answer_length, version_2, null_threshold
        As above.
    """
    if n_best < 1 or max_answer_length < 1:
        raise GeloraError(f"n_best ({n_best}) and max_answer_length ({max_answer_length}) must be at least 1")
    columns = _columns(examples, ("id", "context"))
    feats = _columns(features, EVAL_ONLY_COLUMNS)
    if len(start_logits) != len(feats["example_id"]) or len(end_logits) != len(feats["example_id"]):
        raise GeloraError(
            f"got {len(start_logits)} start and {len(end_logits)} end logit rows for {len(feats['example_id'])} "
            "features; pass one row per evaluation feature, in order"
        )
    windows: dict[str, list[int]] = defaultdict(list)
    for i, qid in enumerate(feats["example_id"]):
        windows[qid].append(i)
    predictions = {}
    for qid, context in zip(columns["id"], columns["context"]):
        if qid not in windows:
            raise GeloraError(f"example {qid!r} has no evaluation features; pass the examples the features came from")
        spans, null_scores = [], []
        for i in windows[qid]:
            starts, ends = np.asarray(start_logits[i]), np.asarray(end_logits[i])
            span = _best_span(starts, ends, feats["offset_mapping"][i], n_best, max_answer_length)
            if span is not None:
                spans.append(span)
            cls = feats["cls_index"][i]
            null_scores.append(float(starts[cls] + ends[cls]))
        best = max(spans, key=lambda scored: scored[0], default=None)
        if best is None or (version_2 and min(null_scores) - best[0] > null_threshold):
            predictions[qid] = ""
        else:
            predictions[qid] = context[best[1][0] : best[1][1]]
    return predictions
