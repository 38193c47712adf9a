"""Sliding-window QA features and span post-processing, on the real MiniLM tokenizer and the local SQuAD v2 sample."""

import copy
import json
import re
import types
from pathlib import Path

import datasets
import numpy as np
import pytest

from gelora.errors import GeloraError
from gelora.models import load_tokenizer
from gelora.train.tasks.qa_features import (
    EVAL_ONLY_COLUMNS,
    check_answers,
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
)
from gelora.train.tasks.squad_metric import squad_v1_scores, squad_v2_scores

SQUAD_V2_VALIDATION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad_v2" / "validation.jsonl"
# "100 101 ... 159": one MiniLM token per number, so windows are easy to count.
CONTEXT = " ".join(str(n) for n in range(100, 160))
# With the question "what?" (2 tokens + 3 special), 20 tokens leave 15 context tokens a window; a stride of 5
# makes windows of numbers 100-114, 110-124, 120-134, ...
WINDOW = {"max_length": 20, "doc_stride": 5}
PEAK = 10.0


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


@pytest.fixture(scope="module")
def left_tokenizer(tokenizer):
    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    return left


@pytest.fixture(scope="module")
def byte_level_tokenizer():
    """A GPT-2-style tokenizer (byte-level BPE, no CLS/BOS, spaces are tokens) trained on the test context."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.post_processor = processors.ByteLevel(trim_offsets=True)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=alphabet, special_tokens=["<pad>"])
    bpe.train_from_iterator([CONTEXT, "what?"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>")


def example(qid: str, answer: str | None, context: str = CONTEXT, question: str = "what?") -> dict:
    answers = {"text": [answer] if answer else [], "answer_start": [context.index(answer)] if answer else []}
    return {"id": qid, "context": context, "question": question, "answers": answers}


@pytest.fixture
def crafted():
    return [
        example("edge", "114 115"),  # cut by the end of window 1, whole in window 2
        example("last", "114"),  # the last context token of window 1
        example("second", "122"),  # in windows 2 and 3 only
        example("none", None),
    ]


def windows_of(features: dict, qid: str) -> list[int]:
    return [i for i, example_id in enumerate(features["example_id"]) if example_id == qid]


def span_text(tok, features: dict, i: int) -> str:
    start, end = features["start_positions"][i], features["end_positions"][i]
    return tok.decode(features["input_ids"][i][start : end + 1])


def test_train_windows_label_the_answer_or_cls(tokenizer, crafted):
    train = prepare_train_features(crafted, tokenizer, **WINDOW)
    evaluation = prepare_eval_features(crafted, tokenizer, **WINDOW)
    assert train["input_ids"] == evaluation["input_ids"]  # the same windows
    assert tokenizer.decode(train["input_ids"][1]).endswith(" ".join(str(n) for n in range(110, 125)) + " [SEP]")
    labels = {
        row["id"]: [(train["start_positions"][i], train["end_positions"][i]) for i in windows_of(evaluation, row["id"])]
        for row in crafted
    }
    assert labels["edge"][0] == (0, 0) and span_text(tokenizer, train, windows_of(evaluation, "edge")[1]) == "114 115"
    assert [span_text(tokenizer, train, i) for i in windows_of(evaluation, "last")[:2]] == ["114", "114"]
    assert labels["last"][0][0] == WINDOW["max_length"] - 2  # last token before [SEP]
    assert [span != (0, 0) for span in labels["second"]] == [False, True, True, False, False, False]
    assert set(labels["none"]) == {(0, 0)}
    for i in range(len(train["input_ids"])):
        if train["start_positions"][i]:
            qid = evaluation["example_id"][i]
            assert span_text(tokenizer, train, i) == next(r for r in crafted if r["id"] == qid)["answers"]["text"][0]


def test_eval_offsets_cover_only_the_context(tokenizer, crafted):
    features = prepare_eval_features(crafted, tokenizer, **WINDOW)
    assert set(features) >= set(EVAL_ONLY_COLUMNS) | {"input_ids", "attention_mask"}
    offsets = features["offset_mapping"][1]
    assert offsets[:4] == [None] * 4 and offsets[-1] is None  # [CLS] what ? [SEP] ... [SEP]
    assert [CONTEXT[start:end] for start, end in offsets[4:-1]] == [str(n) for n in range(110, 125)]
    assert set(features["cls_index"]) == {0}


def peak_logits(train: dict, pad_to: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits that peak at the labelled start and end token of every window; padding positions peak higher."""
    n = len(train["input_ids"])
    starts, ends = np.zeros((n, pad_to)), np.zeros((n, pad_to))
    for i, ids in enumerate(train["input_ids"]):
        starts[i, len(ids) :] = ends[i, len(ids) :] = 10 * PEAK  # right padding must be ignored
        starts[i, train["start_positions"][i]] = PEAK
        ends[i, train["end_positions"][i]] = PEAK
    return starts, ends


def round_trip(examples, tok, version_2: bool, **window) -> dict[str, str]:
    train = prepare_train_features(examples, tok, **window)
    features = prepare_eval_features(examples, tok, **window)
    starts, ends = peak_logits(train, window["max_length"] + 3)
    return postprocess_predictions(examples, features, starts, ends, version_2=version_2)


def gold(examples) -> dict[str, str]:
    return {row["id"]: (row["answers"]["text"] or [""])[0] for row in examples}


@pytest.mark.parametrize("tokenizer_name", ["tokenizer", "left_tokenizer", "byte_level_tokenizer"])
def test_round_trip_returns_the_gold_answers(request, crafted, tokenizer_name):
    tok = request.getfixturevalue(tokenizer_name)
    predictions = round_trip(crafted, tok, version_2=True, **WINDOW)
    assert predictions == gold(crafted)
    assert squad_v2_scores(predictions, crafted) == pytest.approx(
        {"exact": 100, "f1": 100, "total": 4, "HasAns_exact": 100, "HasAns_f1": 100, "HasAns_total": 3}
        | {"NoAns_exact": 100, "NoAns_f1": 100, "NoAns_total": 1}
    )
    answerable = crafted[:3]
    assert squad_v1_scores(round_trip(answerable, tok, version_2=False, **WINDOW), answerable) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }


def test_left_padding_tokenizer_puts_the_question_second(left_tokenizer, crafted):
    features = prepare_eval_features(crafted, left_tokenizer, **WINDOW)
    assert left_tokenizer.decode(features["input_ids"][0]).endswith("114 [SEP] what? [SEP]")
    assert features["offset_mapping"][0][1] == (0, 3)  # the context comes right after [CLS]


def test_leading_spaces_of_a_question_take_no_room(byte_level_tokenizer, crafted):
    # Byte-level BPE makes a token of each leading space; SQuAD has questions with many.
    spaced = [{**row, "question": "   " + row["question"]} for row in crafted]
    features = prepare_train_features(spaced, byte_level_tokenizer, **WINDOW)
    assert features == prepare_train_features(crafted, byte_level_tokenizer, **WINDOW)


@pytest.fixture
def one_window(tokenizer):
    """One window over "100 ... 114" (token k + 4 is the number 100 + k) and a helper for crafted logits."""
    row = example("q", "105", context=" ".join(str(n) for n in range(100, 115)))
    features = prepare_eval_features([row], tokenizer, max_length=32, doc_stride=5)
    length = len(features["input_ids"][0])

    def predict(starts: dict, ends: dict, **options) -> str:
        start_logits, end_logits = np.zeros((1, length)), np.zeros((1, length))
        for token, value in starts.items():
            start_logits[0, token] = value
        for token, value in ends.items():
            end_logits[0, token] = value
        return postprocess_predictions([row], features, start_logits, end_logits, **options)["q"]

    return predict


def test_max_answer_length(one_window):
    # Best span: tokens 6..9 ("102 103 104 105", 4 tokens); the next best end (token 7) gives "102 103".
    assert one_window({6: PEAK}, {9: PEAK, 7: PEAK / 2}, max_answer_length=4) == "102 103 104 105"
    assert one_window({6: PEAK}, {9: PEAK, 7: PEAK / 2}, max_answer_length=3) == "102 103"
    assert one_window({6: PEAK}, {6: PEAK / 2}, max_answer_length=1) == "102"


def test_n_best_limits_the_candidates(one_window):
    # Top start 10 and top end 8 make an invalid span (end < start); only with n_best=2 do (7, 8) = 16 and
    # (10, 10) = 15 and (7, 10) = 11 enter, and (7, 8) wins.
    starts, ends = {10: PEAK, 7: PEAK - 4}, {8: PEAK, 10: PEAK - 5}
    assert one_window(starts, ends, n_best=1) == ""
    assert one_window(starts, ends, n_best=2) == "103 104"


def test_spans_outside_the_context_are_skipped(one_window):
    # Peaks on [CLS] (0) and on the question ("what", token 1) are not answers; the best context span is.
    assert one_window({0: 3 * PEAK, 1: 2 * PEAK, 5: PEAK}, {0: 3 * PEAK, 1: 2 * PEAK, 5: PEAK}) == "101"


@pytest.mark.parametrize(("threshold", "expected"), [(0.0, "101"), (-2.0, "101"), (-3.0, "")])
def test_null_answer_beats_the_span_by_more_than_the_threshold(one_window, threshold, expected):
    # Null score 8 (CLS start 4 + end 4) against the span score 10: 8 - 10 = -2 is more than -3 only.
    logits = {0: PEAK / 2 - 1, 5: PEAK / 2}
    assert one_window(logits, logits, version_2=True, null_threshold=threshold) == expected
    assert one_window(logits, logits, version_2=False, null_threshold=threshold) == "101"


def exhaustive_best_span(features: dict, rows: list[dict], starts, ends, max_answer_length: int) -> dict[str, str]:
    """The best valid span of each example, trying every (start, end) pair of every window."""
    best: dict[str, tuple[float, str]] = {}
    contexts = {row["id"]: row["context"] for row in rows}
    for i, (qid, offsets) in enumerate(zip(features["example_id"], features["offset_mapping"])):
        for start, start_offset in enumerate(offsets):
            for end, end_offset in enumerate(offsets):
                if start_offset is None or end_offset is None or not 0 <= end - start < max_answer_length:
                    continue
                score = starts[i, start] + ends[i, end]
                if score > best.get(qid, (-np.inf, ""))[0]:
                    best[qid] = (score, contexts[qid][start_offset[0] : end_offset[1]])
    return {qid: text for qid, (_, text) in best.items()}


def test_n_best_covering_the_window_finds_the_best_valid_span(tokenizer, crafted):
    features = prepare_eval_features(crafted, tokenizer, **WINDOW)
    rng = np.random.default_rng(0)
    starts, ends = rng.normal(size=(2, len(features["input_ids"]), WINDOW["max_length"]))
    options = {"n_best": WINDOW["max_length"], "max_answer_length": 3}
    predictions = postprocess_predictions(crafted, features, starts, ends, **options)
    assert predictions == exhaustive_best_span(features, crafted, starts, ends, options["max_answer_length"])


def test_null_score_is_the_minimum_over_windows(tokenizer):
    row = example("q", "105")
    features = prepare_eval_features([row], tokenizer, **WINDOW)
    n, length = len(features["input_ids"]), len(features["input_ids"][0])
    starts, ends = np.zeros((n, length)), np.zeros((n, length))
    starts[:, 0] = ends[:, 0] = PEAK  # null score 20 in every window ...
    starts[1, 0] = ends[1, 0] = 1.0  # ... but 2 in window 2
    starts[0, 9] = ends[0, 9] = 2.0  # span "105" scores 4 in window 1
    assert postprocess_predictions([row], features, starts, ends, version_2=True) == {"q": "105"}


def test_squad_v2_sample_round_trip(tokenizer):
    if not SQUAD_V2_VALIDATION.is_file():
        pytest.skip(f"{SQUAD_V2_VALIDATION} not present")
    rows = [json.loads(line) for line in SQUAD_V2_VALIDATION.read_text().splitlines()]
    examples = datasets.Dataset.from_list(rows)
    check_answers(examples)
    window = {"tokenizer": tokenizer, "max_length": 128, "doc_stride": 32}
    train = prepare_train_features(examples, **window)
    # Evaluation features the way a training loop makes them: Dataset.map (offsets go through Arrow).
    features = examples.map(prepare_eval_features, batched=True, remove_columns=examples.column_names, fn_kwargs=window)
    assert features["input_ids"] == train["input_ids"] and len(features) > len(rows)  # long contexts take 2+ windows
    predictions = postprocess_predictions(examples, features, *peak_logits(train, 131), version_2=True)
    scores = squad_v2_scores(predictions, examples)
    assert scores["total"] == len(rows) == 208 and scores["NoAns_total"] == 112
    assert scores["exact"] == scores["f1"] == 100.0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a", "context": "x"}], r"lacks the column\(s\) question, answers"),
        ([example("a", "101"), {**example("b", "102"), "answers": None}], r"row 1 \(id 'b'\): 'answers' must be"),
        ([{**example("a", "101"), "answers": {"text": ["101"], "answer_start": [5]}}], "not start at character 5"),
        ([{**example("a", "101"), "answers": {"text": ["101"], "answer_start": []}}], "of the same length"),
        ([example("a", "101"), example("a", "102")], r"row 1 \(id 'a'\): its id is used by an earlier row"),
        ([{**example("a", "159"), "answers": {"text": ["159"], "answer_start": [-3]}}], "not start at character -3"),
        ([], "has no rows"),
        (datasets.Dataset.from_list([example("a", "101")]).select([]), "has no rows"),
    ],
)
def test_check_answers_names_the_bad_row(rows, message):
    with pytest.raises(GeloraError, match=message) as error:
        check_answers(rows)
    assert "\n" not in str(error.value)


def test_check_answers_accepts_a_column_batch_and_numpy_offsets(crafted):
    columns = {name: [row[name] for row in crafted] for name in crafted[0]}
    columns["answers"][0] = {"text": ["114 115"], "answer_start": [np.int64(CONTEXT.index("114 115"))]}
    check_answers(columns)


def test_window_settings_are_checked_before_tokenising(tokenizer, crafted):
    with pytest.raises(GeloraError, match="raise --max-length .* or lower --doc-stride") as refused:
        prepare_train_features(crafted, tokenizer, max_length=20, doc_stride=15)
    enough = int(re.search(r"to at least (\d+)", str(refused.value)).group(1))
    prepare_train_features(crafted, tokenizer, max_length=enough, doc_stride=15)  # the length it names is enough
    with pytest.raises(GeloraError, match="raise --max-length"):
        prepare_eval_features([example("q", "101", question="what " * 30)], tokenizer, max_length=20, doc_stride=2)
    with pytest.raises(GeloraError, match="fast tokenizer"):
        prepare_eval_features(crafted, types.SimpleNamespace(is_fast=False), **WINDOW)


def test_postprocess_checks_the_logit_rows(tokenizer, crafted):
    features = prepare_eval_features(crafted, tokenizer, **WINDOW)
    logits = np.zeros((len(features["input_ids"]) - 1, 20))
    with pytest.raises(GeloraError, match="one row per evaluation feature"):
        postprocess_predictions(crafted, features, logits, logits)
    with pytest.raises(GeloraError, match="must be at least 1"):
        postprocess_predictions(crafted, features, *peak_logits_like(features), n_best=0)
    with pytest.raises(GeloraError, match="example 'extra' has no evaluation features"):
        postprocess_predictions([*crafted, example("extra", "101")], features, *peak_logits_like(features))


def peak_logits_like(features: dict) -> tuple[np.ndarray, np.ndarray]:
    shape = (len(features["input_ids"]), max(map(len, features["input_ids"])))
    return np.zeros(shape), np.zeros(shape)
