"""``--task classify``: a user's own file, string labels by name, regression from float labels, clear refusals."""

from __future__ import annotations

import pytest
from helpers import LABELS, tiny_config, write_rows

from gelora.cli import main
from gelora.errors import GeloraError
from gelora.train import runner
from gelora.train.config import DataOptions
from gelora.train.tasks.classify import Classify


def classify_config(tiny, tmp_path, **data):
    options = DataOptions(text_columns=["text"], label_column="y", **data)
    return tiny_config(tiny, tmp_path / "run", task="classify", data_options=options, data_dir=None, epochs=1)


def test_string_labels_become_named_classes(tiny, tmp_path):
    train = write_rows(tmp_path / "train.csv", 30)
    evaluation = write_rows(tmp_path / "eval.jsonl", 12, seed=1)
    metrics = runner.train(classify_config(tiny, tmp_path, data=str(train), eval_data=str(evaluation)))
    assert metrics["metric"] == "accuracy" and set(metrics["final"]) >= {"accuracy", "macro_f1"}
    assert metrics["labels"] == sorted(LABELS) and metrics["problem"] == "classification"
    assert metrics["train_samples"] == 30 and metrics["eval_samples"] == 12


def test_float_labels_make_a_regression_and_a_seeded_eval_fraction(tiny, tmp_path):
    train = write_rows(tmp_path / "train.jsonl", 40, regression=True)
    first = runner.train(classify_config(tiny, tmp_path / "a", data=str(train), eval_fraction=0.25))
    assert first["metric"] == "pearson" and first["problem"] == "regression"
    assert (first["train_samples"], first["eval_samples"]) == (30, 10)
    again = runner.train(classify_config(tiny, tmp_path / "b", data=str(train), eval_fraction=0.25))
    assert again["history"] == first["history"]  # the held-out rows are the same for the same seed


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (dict(), "needs --data"),
        (dict(label_column="missing"), "missing"),
        (dict(eval_fraction=1.5), "--eval-fraction must be in (0, 1)"),
    ],
)
def test_bad_settings(tiny, tmp_path, data, phrase):
    train = write_rows(tmp_path / "train.csv", 12)
    settings = {"data": str(train)} | data if data.get("label_column") or data.get("eval_fraction") else data
    options = DataOptions(text_columns=["text"], **{"label_column": "y"} | settings)
    with pytest.raises(GeloraError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        runner.train(tiny_config(tiny, tmp_path / "run", task="classify", data_options=options, data_dir=None))
    assert not (tmp_path / "run").exists()


def test_a_label_only_in_the_eval_data_is_refused(tiny, tmp_path, capsys):
    train = write_rows(tmp_path / "train.csv", 12, labels=("negative", "positive"))
    evaluation = write_rows(tmp_path / "eval.csv", 6)
    argv = ["train", tiny["model"], "--task", "classify", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(train), "--eval-data", str(evaluation), "--text-columns", "text", "--label-column", "y",
            "--max-length", "32"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'neutral' appear only in the evaluation data" in err and len(err.strip().splitlines()) == 1
    assert "add training rows with them, or drop those evaluation rows" in err


def test_data_options_do_not_apply_to_glue(tiny, tmp_path):
    options = DataOptions(text_columns=["sentence1"])
    with pytest.raises(GeloraError, match="--text-columns does not apply to --task glue/rte; drop it"):
        runner.train(tiny_config(tiny, tmp_path / "run", data_options=options))


def test_integer_labels_keep_their_numeric_order(tiny, tmp_path):
    train = write_rows(tmp_path / "train.jsonl", 44, labels=tuple(range(11)))
    metrics = runner.train(classify_config(tiny, tmp_path, data=str(train), eval_fraction=0.25))
    assert metrics["labels"] == [str(i) for i in range(11)]  # not "0", "1", "10", "2", ...


def test_eval_fraction_or_data_dir_that_would_be_ignored(tiny, tmp_path):
    train = write_rows(tmp_path / "train.csv", 12)
    options = DataOptions(text_columns=["text"], label_column="y", data=str(train), eval_data=str(train),
                          eval_fraction=0.3)
    with pytest.raises(GeloraError, match="--eval-fraction holds out training rows only without --eval-data"):
        runner.train(tiny_config(tiny, tmp_path / "run", task="classify", data_options=options, data_dir=None))
    options = DataOptions(text_columns=["text"], label_column="y", data=str(train))
    with pytest.raises(GeloraError, match="--data-dir is the GLUE folder"):
        runner.train(tiny_config(tiny, tmp_path / "run", task="classify", data_options=options))


@pytest.mark.parametrize(
    ("train_labels", "eval_labels", "split"),
    [
        (["good", "bad", "", "good", "bad", "good"], ["good", "bad"], "training"),  # not a class named "None"
        (["1.5", "", "2.5", "0.5", "3.0", "4.0"], ["1.0", "2.0"], "training"),  # not a 6-class classification
        (["1.5", "0.5", "2.5", "0.5", "3.0", "4.0"], ["1.0", ""], "evaluation"),  # not a traceback
    ],
)
def test_a_row_without_a_label_is_refused(tiny, tmp_path, capsys, train_labels, eval_labels, split):
    def csv(name: str, labels: list[str]) -> str:
        path = tmp_path / name
        path.write_text("text,y\n" + "".join(f"some words {i},{y}\n" for i, y in enumerate(labels)))
        return str(path)

    argv = ["train", tiny["model"], "--task", "classify", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", csv("train.csv", train_labels), "--eval-data", csv("eval.csv", eval_labels),
            "--text-columns", "text", "--label-column", "y", "--max-length", "32"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"1 {split} row(s) have no label in column 'y'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_options_that_local_data_would_ignore_are_refused(tiny, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_rows(folder / "train.csv", 12)
    write_rows(folder / "validation.csv", 6, seed=1)
    cases = [(dict(data=str(folder), eval_fraction=0.3), "has a validation split, which the run evaluates on"),
             (dict(data=str(folder / "train.csv"), data_config="main"), "--data-config names a configuration")]
    # a Hub --eval-data may need a configuration beside local training data: not refused for it
    hub_eval = DataOptions(text_columns=["text"], label_column="y", data=str(folder / "train.csv"),
                           eval_data="org/data", data_config="main")
    Classify(tiny_config(tiny, tmp_path / "run", task="classify", data_options=hub_eval, data_dir=None))\
        ._check_local_data(hub_eval)
    for data, phrase in cases:
        options = DataOptions(text_columns=["text"], label_column="y", **data)
        with pytest.raises(GeloraError, match=phrase):
            runner.train(tiny_config(tiny, tmp_path / "run", task="classify", data_options=options, data_dir=None))
        assert not (tmp_path / "run").exists()
    # the folder's own split, or a fraction of one file, are what a run evaluates on
    options = DataOptions(text_columns=["text"], label_column="y", data=str(folder))
    metrics = runner.train(tiny_config(tiny, tmp_path / "run", task="classify", data_options=options, data_dir=None,
                                       epochs=1))
    assert metrics["eval_samples"] == 6


def test_an_eval_fraction_that_leaves_a_part_empty_is_one_line(tiny, tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("text,y\nhello there,a\n")
    argv = ["train", tiny["model"], "--task", "classify", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(one), "--text-columns", "text", "--label-column", "y", "--max-length", "32"]
    assert main(argv) == 2  # was a traceback from datasets' train_test_split
    err = capsys.readouterr().err
    assert "holding out 0.1 of 1 row(s) for evaluation leaves no training or no evaluation row" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_a_bad_text_is_named_by_its_place_in_the_file_also_with_an_eval_fraction(tiny, tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_text("text,y\n" + "".join(f"{'' if i == 7 else f'words {i}'},{'ab'[i % 2]}\n" for i in range(20)))
    argv = ["train", tiny["model"], "--task", "classify", "--method", "lora", "--out", str(tmp_path / "run"),
            "--data", str(path), "--text-columns", "text", "--label-column", "y", "--max-length", "32"]
    assert main(argv) == 2  # the empty cell of row 7, not its place after the seeded split
    err = capsys.readouterr().err
    assert "in row 7" in err and len(err.strip().splitlines()) == 1
