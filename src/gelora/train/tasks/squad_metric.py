"""The official SQuAD v1.1 and v2.0 scores: exact match (EM) and token F1 after answer normalisation.

Written from the published definition (Rajpurkar et al. 2016, 2018 and their evaluation scripts): an answer is
lower-cased, stripped of ASCII punctuation and of the articles a/an/the, and its whitespace collapsed; a prediction
scores the maximum over the gold answers of its question. SQuAD v2.0 adds unanswerable questions (no gold
answers), which count as correct only when the prediction is empty.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping

from gelora.errors import GeloraError

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, then the articles a/an/the, and collapse whitespace (in the official order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, gold: str) -> float:
    """1.0 when the two answers are equal after normalisation, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _overlap_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, gold: str) -> float:
    """Token F1 of the normalised answers (v2.0 rule: an empty answer scores 1.0 against an empty one, else 0.0)."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    return _overlap_f1(pred_tokens, gold_tokens)


def _gold_texts(row: Mapping) -> list[str]:
    answers = row.get("answers")
    if not isinstance(answers, Mapping) or not isinstance(answers.get("text"), (list, tuple)):
        raise GeloraError(
            f"question {row.get('id')!r}: 'answers' must be a dict with a 'text' list; "
            "use the SQuAD schema (answers={'text': [...], 'answer_start': [...]})"
        )
    return list(answers["text"])


def _prediction(predictions: Mapping[str, str], qid: str) -> str:
    if qid not in predictions:
        raise GeloraError(f"no prediction for question {qid!r}; predict every question (an empty string abstains)")
    return predictions[qid]


def _percent(scores: list[float]) -> float:
    return 100.0 * sum(scores) / len(scores)


def squad_v1_scores(predictions: Mapping[str, str], examples: Iterable[Mapping]) -> dict[str, float]:
    """The SQuAD v1.1 scores ``{"exact_match", "f1"}`` in 0..100.

    Parameters
    ----------
    predictions
        Predicted answer text per question id.
    examples
        Rows with ``id`` and ``answers={"text": [...], ...}`` (a ``datasets.Dataset`` or a list of dicts); every
        question must have at least one gold answer.

    Raises
    ------
    GeloraError
        When there are no rows, a question has no gold answer (score it with ``squad_v2_scores``) or no prediction.
    """
    exact, f1 = [], []
    for row in examples:
        golds, pred = _gold_texts(row), _prediction(predictions, row["id"])
        if not golds:
            raise GeloraError(
                f"question {row['id']!r} has no gold answer, which SQuAD v1.1 cannot score; use squad_v2_scores"
            )
        exact.append(max(exact_match_score(pred, gold) for gold in golds))
        # v1.1 F1 is plain token overlap: a gold answer that normalises to nothing scores 0 (unlike v2.0).
        pred_tokens = normalize_answer(pred).split()
        f1.append(max(_overlap_f1(pred_tokens, normalize_answer(gold).split()) for gold in golds))
    if not exact:
        raise GeloraError("no questions to score; pass the evaluation rows")
    return {"exact_match": _percent(exact), "f1": _percent(f1)}


def squad_v2_scores(predictions: Mapping[str, str], examples: Iterable[Mapping]) -> dict[str, float]:
    """The SQuAD v2.0 scores, keyed like the official script: ``exact, f1, total``, then ``HasAns_*`` and ``NoAns_*``.

    A question is answerable when its row lists any gold answer; gold answers that normalise to nothing are
    dropped (an answerable question left with none is scored against the empty answer), as in the official script.
    Like it, a group with no questions (``HasAns_*`` or ``NoAns_*``) is left out. Scores are in 0..100, totals
    are counts.

    Parameters
    ----------
    predictions
        Predicted answer text per question id; ``""`` means "no answer".
    examples
        Rows with ``id`` and ``answers={"text": [...], ...}`` (empty list for unanswerable questions).

    Raises
    ------
    GeloraError
        When there are no rows, a row's ``answers`` is malformed, or a question has no prediction.
    """
    groups: dict[str, tuple[list[float], list[float]]] = {"": ([], []), "HasAns_": ([], []), "NoAns_": ([], [])}
    for row in examples:
        texts, pred = _gold_texts(row), _prediction(predictions, row["id"])
        golds = [text for text in texts if normalize_answer(text)] or [""]
        exact = max(exact_match_score(pred, gold) for gold in golds)
        f1 = max(f1_score(pred, gold) for gold in golds)
        for prefix in ("", "HasAns_" if texts else "NoAns_"):
            groups[prefix][0].append(exact)
            groups[prefix][1].append(f1)
    if not groups[""][0]:
        raise GeloraError("no questions to score; pass the evaluation rows")
    result: dict[str, float] = {}
    for prefix, (exact, f1) in groups.items():
        if exact:
            result |= {f"{prefix}exact": _percent(exact), f"{prefix}f1": _percent(f1), f"{prefix}total": len(exact)}
    return result
