"""``--task qa`` / ``squad_v2``: windows, span head, official SQuAD scores, on the local SQuAD v2 sample."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from helpers import tiny_config

from gelora.cli import main
from gelora.errors import GeloraError
from gelora.train import runner
from gelora.train.config import DataOptions
from gelora.train.tasks.qa_features import prepare_train_features

SQUAD_V2 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad_v2"


@pytest.fixture(scope="module")
def squad_v2() -> Path:
    if not SQUAD_V2.is_dir():
        pytest.skip(f"SQuAD v2 sample {SQUAD_V2} not present")
    return SQUAD_V2


@pytest.mark.parametrize("method", ["lora", "gelora"])
def test_squad_v2_trains_and_reports_official_scores(tiny, tmp_path, squad_v2, method):
    options = DataOptions(data=str(squad_v2))
    config = tiny_config(tiny, tmp_path / "run", task="squad_v2", method=method, data_dir=None, data_options=options,
                         max_length=64, max_train_samples=24, max_eval_samples=16, epochs=1)
    metrics = runner.train(config)
    final = metrics["final"]
    assert metrics["metric"] == "f1" and metrics["squad_version"] == 2
    assert {"exact", "f1", "HasAns_exact", "NoAns_exact", "total"} <= set(final) and final["total"] == 16
    assert 0 <= final["f1"] <= 100 and final["f1"] >= final["exact"]
    # 64-token windows with a stride of 21: the sample's contexts need several windows each
    assert metrics["eval_windows"] > 16 and metrics["train_samples"] == metrics["train_windows"] > 24
    saved = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert saved["task_type"] == "QUESTION_ANS" and "qa_outputs" in saved["modules_to_save"]


def test_answers_that_do_not_match_the_context_are_refused(tiny, tmp_path, squad_v2, capsys):
    rows = [json.loads(line) for line in (squad_v2 / "validation.jsonl").read_text().splitlines()[:6]]
    answered = next(r for r in rows if r["answers"]["text"])
    answered["answers"]["answer_start"][0] += 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["train", tiny["model"], "--task", "qa", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(bad), "--eval-data", str(bad), "--max-length", "64"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "does not start at character" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_qa_needs_data_and_a_stride_below_the_length(tiny, tmp_path):
    with pytest.raises(GeloraError, match="--task qa needs --data"):
        runner.train(tiny_config(tiny, tmp_path / "run", task="qa", data_dir=None))
    options = DataOptions(data="x.jsonl", doc_stride=64)
    with pytest.raises(GeloraError, match="--doc-stride"):
        runner.train(tiny_config(tiny, tmp_path / "run", task="qa", data_dir=None, data_options=options, max_length=64))


def test_held_out_questions_share_no_context_with_training(tiny, tmp_path, squad_v2):
    from datasets import Dataset

    from gelora.train.tasks import make_task

    rows = Dataset.from_list([json.loads(line) for line in (squad_v2 / "train.jsonl").read_text().splitlines()])
    config = tiny_config(tiny, tmp_path / "run", task="qa", data_dir=None,
                         data_options=DataOptions(data=str(squad_v2 / "train.jsonl"), eval_fraction=0.2))
    train, evaluation = make_task(config).hold_out(rows, 0.2)
    assert len(train) + len(evaluation) == len(rows) and len(evaluation) > 0
    assert not set(train["context"]) & set(evaluation["context"])


def test_squad_v1_refuses_unanswerable_questions(tiny, tmp_path, squad_v2, capsys):
    argv = ["train", tiny["model"], "--task", "squad", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(squad_v2), "--max-length", "64", "--max-train-samples", "8"]
    assert main(argv) == 2  # the sample is SQuAD v2: scoring it as v1.1 would be silently wrong
    err = capsys.readouterr().err
    assert "use --task squad_v2" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_qa_data_without_contexts_is_one_line_before_the_split(tiny, tmp_path, capsys):
    rows = tmp_path / "noctx.jsonl"
    rows.write_text(json.dumps({"id": "1", "question": "q?", "answers": {"text": ["x"], "answer_start": [0]}}) + "\n")
    argv = ["train", tiny["model"], "--task", "qa", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(rows), "--max-length", "64"]
    assert main(argv) == 2  # was a traceback: the held-out split reads the contexts
    err = capsys.readouterr().err
    assert "lacks the column(s) context" in err and len(err.strip().splitlines()) == 1


def test_squad_v1_refuses_unanswerable_training_questions_too(tiny, tmp_path, squad_v2, capsys):
    rows = [json.loads(line) for line in (squad_v2 / "validation.jsonl").read_text().splitlines()]
    answered = [r for r in rows if r["answers"]["text"]][:6]
    unanswered = next(r for r in rows if not r["answers"]["text"])
    train, evaluation = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in [*answered, unanswered]))
    evaluation.write_text("".join(json.dumps(r) + "\n" for r in answered))
    argv = ["train", tiny["model"], "--task", "squad", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(train), "--eval-data", str(evaluation), "--max-length", "64"]
    assert main(argv) == 2
    assert "1 training question(s) have none; use --task squad_v2" in capsys.readouterr().err


class PeakModel(torch.nn.Module):
    """A stand-in QA model: start and end logits ``weight`` at the tokens of each given id, 0 elsewhere."""

    def __init__(self, peaks: dict[int, float]):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # predict reads the device from a parameter
        self.peaks = peaks

    def forward(self, input_ids, **_):
        logits = sum(weight * (input_ids == token).float() for token, weight in self.peaks.items())
        return SimpleNamespace(start_logits=logits, end_logits=logits)


@pytest.fixture(scope="module")
def left_padding_tokenizer():
    """MiniLM's tokenizer padding on the left, as XLNet's does (gelora then puts the context first)."""
    from gelora.models import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    tokenizer.padding_side = "left"
    return tokenizer


# Two one-window questions of different lengths: in one batch, the shorter one is padded.
RIVER = [{"id": "short", "question": "where?", "context": "the cat sat by the river in the sun"},
         {"id": "long", "question": "where?", "context": "the old dog and the small cat sat near the green house "
                                                          "by the river"}]


def qa_task(tiny, tmp_path, **options):
    from gelora.train.tasks import make_task

    options = DataOptions(data="unused.jsonl", doc_stride=16, **options)
    return make_task(tiny_config(tiny, tmp_path / "run", task="qa", data_dir=None, data_options=options,
                                 max_length=64))


def test_left_padding_answers_do_not_depend_on_the_batch(tiny, tmp_path, left_padding_tokenizer):
    task = qa_task(tiny, tmp_path)
    model = PeakModel({left_padding_tokenizer.convert_tokens_to_ids("river"): 10.0})
    rows = Dataset.from_list(RIVER)
    one_by_one, together = (task.predict(model, left_padding_tokenizer, rows, size) for size in (1, 2))
    assert one_by_one == together == [{"id": "short", "answer": "river"}, {"id": "long", "answer": "river"}]


def test_left_padding_training_labels_point_at_the_answer_in_a_batch(tiny, tmp_path, left_padding_tokenizer):
    tok = left_padding_tokenizer
    rows = [dict(row, answers={"text": ["river"], "answer_start": [row["context"].index("river")]}) for row in RIVER]
    task = qa_task(tiny, tmp_path)
    collate = task.load_eval(tok, Dataset.from_list(rows)).collate  # the training collator too (load)
    windows = prepare_train_features(rows, tok, max_length=64, doc_stride=16)
    windows = [{name: column[i] for name, column in windows.items()} for i in range(len(rows))]
    assert len({len(window["input_ids"]) for window in windows}) == 2
    batch = collate(windows)
    for i, window in enumerate(windows):
        alone = collate([window])
        for name in ("start_positions", "end_positions"):
            assert batch[name][i] == alone[name][0]
            assert tok.convert_ids_to_tokens(int(batch["input_ids"][i, batch[name][i]])) == "river"


def test_profiled_pairs_are_in_the_windows_order(tiny, tmp_path, left_padding_tokenizer):
    from gelora.train.tasks import make_task

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(dict(row, answers={"text": ["river"], "answer_start": [
        row["context"].index("river")]})) + "\n" for row in RIVER))
    options = DataOptions(data=str(rows), eval_data=str(rows), doc_stride=16)
    task = make_task(tiny_config(tiny, tmp_path / "run", task="qa", data_dir=None, data_options=options,
                                 max_length=64))
    data = task.load(left_padding_tokenizer)  # context first, as in its windows
    assert data.profile_texts == [(row["context"], row["question"]) for row in RIVER]


def test_a_run_trained_on_unanswerable_questions_is_squad_v2(tiny, tmp_path, squad_v2):
    from gelora.models import load_tokenizer
    from gelora.train.tasks import make_task
    from gelora.train.trained import open_run

    rows = [json.loads(line) for line in (squad_v2 / "validation.jsonl").read_text().splitlines()]
    answered = [r for r in rows if r["answers"]["text"]][:4]
    unanswered = [r for r in rows if not r["answers"]["text"]][:2]
    train, evaluation = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in [*answered[:2], *unanswered]))
    evaluation.write_text("".join(json.dumps(r) + "\n" for r in answered[2:]))  # answerable only
    options = DataOptions(data=str(train), eval_data=str(evaluation))
    config = tiny_config(tiny, tmp_path / "run", task="qa", data_dir=None, data_options=options, max_length=64,
                         epochs=1)
    runner.train(config)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["squad_version"] == 2
    # gelora predict restores the task from the run: its null answer competes, so it can abstain
    run = open_run(tmp_path / "run")
    tokenizer = load_tokenizer(tiny["model"])
    task = make_task(run.config)
    task.restore(run.metrics, tokenizer)
    context = answered[0]["context"]
    question = Dataset.from_list([{"id": "q", "question": "where?", "context": context}])
    # every context token is a candidate span (a v1 run answers one), the null answer scores higher
    spans = dict.fromkeys(tokenizer(context, add_special_tokens=False)["input_ids"], 1.0)
    model = PeakModel({**spans, tokenizer.cls_token_id: 10.0})
    assert task.predict(model, tokenizer, question, 1) == [{"id": "q", "answer": ""}]
    task.restore({**run.metrics, "squad_version": 1}, tokenizer)  # control: a v1 run answers with a span
    answer = task.predict(model, tokenizer, question, 1)[0]["answer"]
    assert answer and answer in context
