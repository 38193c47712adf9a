"""The official SQuAD v1.1/v2.0 scores against hand-computed values and the official scripts' documented behaviour."""

import datasets
import pytest

from gelora.errors import GeloraError
from gelora.train.tasks.squad_metric import (
    exact_match_score,
    f1_score,
    normalize_answer,
    squad_v1_scores,
    squad_v2_scores,
)


def row(qid: str, *golds: str) -> dict:
    return {"id": qid, "answers": {"text": list(golds), "answer_start": [0] * len(golds)}}


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The  Cat, sat!", "cat sat"),  # lower case, punctuation, article, extra whitespace
        ("An apple a day", "apple day"),
        ("Anthem of the theatre", "anthem of theatre"),  # articles only as whole words
        ("U.S. rock-n-roll", "us rocknroll"),  # punctuation is deleted, not turned into spaces
        ("“cat”", "“cat”"),  # only ASCII punctuation (string.punctuation) is removed
        (" the . a ", ""),
    ],
)
def test_normalize_answer(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_ignores_case_articles_and_punctuation():
    assert exact_match_score("The Cat.", "cat") == 1.0
    assert exact_match_score("rock n roll", "rock-n-roll") == 0.0
    assert exact_match_score("cats", "cat") == 0.0


def test_f1_by_hand():
    # "the cat sat" -> [cat, sat]; "a cat sat on" -> [cat, sat, on]: 2 common, P = 2/2, R = 2/3, F1 = 2PR/(P+R) = 0.8
    assert f1_score("the cat sat", "a cat sat on") == pytest.approx(0.8)
    # [cat, cat, dog] vs [cat, dog, dog]: common counts min(2,1) + min(1,2) = 2, P = R = 2/3
    assert f1_score("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)
    assert f1_score("dog", "cat") == 0.0


def test_f1_empty_answers():
    assert f1_score("", "") == 1.0
    assert f1_score("The.", "") == 1.0  # normalises to empty
    assert f1_score("", "France") == 0.0
    assert f1_score("France", "") == 0.0


@pytest.fixture
def mixed():
    # q1 matches one of two golds; q2 scores F1 0.8 (hand value above); q3 abstains correctly; q4 answers wrongly.
    examples = [row("q1", "Denmark, Iceland", "Denmark"), row("q2", "a cat sat on"), row("q3"), row("q4")]
    predictions = {"q1": "denmark", "q2": "the cat sat", "q3": "", "q4": "France"}
    return examples, predictions


def test_squad_v2_scores_by_hand(mixed):
    examples, predictions = mixed
    scores = squad_v2_scores(predictions, datasets.Dataset.from_list(examples))
    expected = {
        "exact": 100 * (1 + 0 + 1 + 0) / 4,
        "f1": 100 * (1 + 0.8 + 1 + 0) / 4,
        "total": 4,
        "HasAns_exact": 100 * (1 + 0) / 2,
        "HasAns_f1": 100 * (1 + 0.8) / 2,
        "HasAns_total": 2,
        "NoAns_exact": 100 * (1 + 0) / 2,
        "NoAns_f1": 100 * (1 + 0) / 2,
        "NoAns_total": 2,
    }
    assert scores == pytest.approx(expected)


def test_squad_v2_leaves_out_an_empty_group(mixed):
    examples, predictions = mixed
    scores = squad_v2_scores(predictions, examples[:2])
    assert set(scores) == {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"}
    assert scores["f1"] == pytest.approx(90.0)


def test_squad_v2_drops_gold_answers_that_normalise_to_nothing():
    # The official v2 script keeps only golds with a non-empty normalisation; none left -> scored against "".
    examples = [row("q1", "The", "Paris"), row("q2", "The")]
    scores = squad_v2_scores({"q1": "the", "q2": ""}, examples)
    assert scores["exact"] == 50.0 and scores["HasAns_total"] == 2


def test_squad_v1_scores_by_hand(mixed):
    examples, predictions = mixed
    assert squad_v1_scores(predictions, examples[:2]) == pytest.approx({"exact_match": 50.0, "f1": 90.0})


def test_squad_v1_f1_is_plain_overlap():
    # v1.1 has no empty-answer rule: a gold that normalises to nothing gives F1 0 even when EM is 1.
    assert squad_v1_scores({"q": ""}, [row("q", "The")]) == {"exact_match": 100.0, "f1": 0.0}


@pytest.mark.parametrize(
    ("scorer", "predictions", "examples", "message"),
    [
        (squad_v1_scores, {"q": ""}, [row("q")], "use squad_v2_scores"),
        (squad_v1_scores, {}, [row("q", "x")], "no prediction for question 'q'"),
        (squad_v2_scores, {}, [row("q")], "no prediction for question 'q'"),
        (squad_v2_scores, {}, [], "no questions to score"),
        (squad_v2_scores, {"q": ""}, [{"id": "q", "answers": ["x"]}], "'answers' must be a dict"),
    ],
)
def test_bad_input_is_one_clear_line(scorer, predictions, examples, message):
    with pytest.raises(GeloraError, match=message) as error:
        scorer(predictions, examples)
    assert "\n" not in str(error.value)
