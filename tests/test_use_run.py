"""``gelora evaluate`` / ``gelora predict``: a finished run reopened with plain PEFT, on new data.

Known answers: evaluating a run on its own evaluation rows gives its final metrics exactly (same model, same rows),
and predicted labels are the argmax of the adapter reloaded here independently of gelora.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import LABELS, tiny_config, write_rows

from gelora.cli import main
from gelora.data import GLUE_TASKS
from gelora.train import runner
from gelora.train.config import DataOptions
from gelora.train.tasks.glue import LABEL_NAMES
from gelora.train.tasks.squad_metric import squad_v2_scores

SQUAD_V2 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad_v2"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def evaluate_json(run: Path, data: Path, capsys, *extra: str) -> dict:
    assert main(["evaluate", str(run), "--data", str(data), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def predict_rows(run: Path, data: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["predict", str(run), "--data", str(data), "--out", str(out), *extra]) == 0
    return read_jsonl(out)


def final_scores(run: Path, names) -> dict:
    final = json.loads((run / "metrics.json").read_text())["final"]
    return {name: final[name] for name in names}


def reloaded_logits(tiny: dict, run: Path, texts: list[tuple[str, ...]], **head) -> torch.Tensor:
    """Logits of the run's adapter opened with plain Transformers + PEFT (no gelora code)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = AutoModelForSequenceClassification.from_pretrained(tiny["model"], **head)
    model = PeftModel.from_pretrained(base, run / "adapter").eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "adapter")
    with torch.no_grad():
        return model(**tokenizer(*zip(*texts), padding=True, truncation=True, max_length=24,
                                 return_tensors="pt")).logits


# ---- GLUE (with --eval-data in training)


@pytest.fixture(scope="module")
def glue_run(tiny, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("glue_run")
    rows = read_jsonl(Path(tiny["data_dir"]) / "rte" / "validation.jsonl")[:12]
    eval_file = write_jsonl(root / "rte_eval.jsonl", rows)
    config = tiny_config(tiny, root / "run", epochs=1, max_eval_samples=None,
                         data_options=DataOptions(eval_data=str(eval_file)))
    metrics = runner.train(config)
    assert metrics["eval_samples"] == 12  # the --eval-data file, not the folder's 24 validation rows
    return root / "run", eval_file


def test_glue_evaluate_reproduces_the_runs_final_metrics(glue_run, capsys):
    run, eval_file = glue_run
    result = evaluate_json(run, eval_file, capsys)
    assert result["rows"] == 12 and result["task"] == "glue/rte"
    assert result["metrics"] == final_scores(run, result["metrics"]) and "accuracy" in result["metrics"]


def test_glue_evaluate_prints_a_table(glue_run, capsys):
    run, eval_file = glue_run
    assert main(["evaluate", str(run), "--data", str(eval_file), "--batch-size", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "lora on glue/rte" in lines[0] and lines[1].split()[0] == "accuracy"
    assert float(lines[1].split()[1]) == pytest.approx(final_scores(run, ["accuracy"])["accuracy"], abs=5e-5)


def test_glue_predict_names_the_argmax_of_the_reloaded_adapter(tiny, glue_run, tmp_path):
    run, eval_file = glue_run
    unlabelled = write_jsonl(tmp_path / "x.jsonl", [{"sentence1": r["sentence1"], "sentence2": r["sentence2"]}
                                                    for r in read_jsonl(eval_file)])
    preds = predict_rows(run, unlabelled, tmp_path / "preds.jsonl")
    texts = [(r["sentence1"], r["sentence2"]) for r in read_jsonl(unlabelled)]
    expected = reloaded_logits(tiny, run, texts, num_labels=2).softmax(-1)
    assert len(preds) == len(texts)
    assert [p["label"] for p in preds] == [LABEL_NAMES["rte"][i] for i in expected.argmax(-1).tolist()]
    scores = torch.tensor([[p["scores"][name] for name in LABEL_NAMES["rte"]] for p in preds])
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def stsb_run(tiny, tmp_path_factory) -> tuple[Path, Path]:
    """A GeoLoRA regression (one output): its adapter is GeoLoRA's export to PEFT LoRA."""
    root = tmp_path_factory.mktemp("stsb_run")
    runner.train(tiny_config(tiny, root / "run", task="glue/stsb", method="geolora", epochs=1, max_train_samples=16,
                             max_eval_samples=None))
    return root / "run", Path(tiny["data_dir"]) / "stsb" / "validation.jsonl"


def test_a_geolora_run_reopens_as_its_exported_peft_lora(stsb_run, capsys):
    """GeoLoRA's U S V^T refactored into LoRA's B A: the same function up to float rounding."""
    run, eval_file = stsb_run
    result = evaluate_json(run, eval_file, capsys)
    expected = final_scores(run, result["metrics"])
    assert result["metrics"] == pytest.approx(expected, rel=1e-5)
    # a task-typed adapter, as a PEFT LoRA run writes, so AutoPeftModelFor... opens it as well
    saved = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert saved["task_type"] == "SEQ_CLS"


# ---- classify: string labels, and a full fine-tuning regression


@pytest.fixture(scope="module")
def classify_run(tiny, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("classify_run")
    train, evaluation = write_rows(root / "train.csv", 30), write_rows(root / "eval.jsonl", 9, seed=1)
    options = DataOptions(data=str(train), eval_data=str(evaluation), text_columns=["text"], label_column="y")
    runner.train(tiny_config(tiny, root / "run", task="classify", data_options=options, data_dir=None, epochs=1,
                             max_eval_samples=None))
    return root / "run", evaluation


def test_classify_evaluate_reproduces_the_runs_final_metrics(classify_run, capsys):
    run, evaluation = classify_run
    result = evaluate_json(run, evaluation, capsys)
    assert set(result["metrics"]) == {"accuracy", "macro_f1"}
    assert result["metrics"] == final_scores(run, result["metrics"])


def test_classify_label_mapping_comes_from_the_run(classify_run, tmp_path, capsys):
    """Rows holding two of the three classes: a mapping recomputed from them would renumber the classes."""
    run, evaluation = classify_run
    rows = [r for r in read_jsonl(evaluation) if r["y"] != "negative"]
    subset = write_jsonl(tmp_path / "subset.jsonl", rows)
    assert main(["predict", str(run), "--data", str(subset), "--out", str(tmp_path / "p.jsonl")]) == 0
    preds = read_jsonl(tmp_path / "p.jsonl")
    everything = predict_rows(run, evaluation, tmp_path / "all.jsonl")
    assert preds == [p for p, r in zip(everything, read_jsonl(evaluation)) if r["y"] != "negative"]
    capsys.readouterr()
    result = evaluate_json(run, subset, capsys)
    truth = [r["y"] for r in rows]
    accuracy = sum(p["label"] == y for p, y in zip(preds, truth)) / len(truth)
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy)


def test_classify_predict_gives_label_names_without_a_label_column(tiny, classify_run, tmp_path):
    run, evaluation = classify_run
    texts = [r["text"] for r in read_jsonl(evaluation)]
    unlabelled = write_jsonl(tmp_path / "texts.jsonl", [{"text": t} for t in texts])
    preds = predict_rows(run, unlabelled, tmp_path / "preds.jsonl")
    names = sorted(LABELS)
    logits = reloaded_logits(tiny, run, [(t,) for t in texts], num_labels=3, id2label=dict(enumerate(names)),
                             label2id={n: i for i, n in enumerate(names)})
    assert [p["label"] for p in preds] == [names[i] for i in logits.argmax(-1).tolist()]
    assert all(set(p["scores"]) == set(LABELS) and sum(p["scores"].values()) == pytest.approx(1) for p in preds)


def readme_recipe(adapter: Path, auto: bool):
    """The README's plain-PEFT reload (no gelora code): its code block run as written on ``adapter``, or (``auto``)
    the AutoPeftModel keywords its next paragraph gives."""
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoConfig

    if auto:
        config = AutoConfig.from_pretrained(adapter / "model_config")
        return AutoPeftModelForSequenceClassification.from_pretrained(
            adapter, num_labels=config.num_labels, id2label=config.id2label, label2id=config.label2id,
            problem_type=config.problem_type).eval()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "/model_config" in b)
    code = block.replace('adapter = "runs/reviews/adapter"', f"adapter = {str(adapter)!r}")
    assert code != block, "the README's recipe no longer names its adapter as the test expects"
    scope: dict = {}
    exec(code, scope)
    return scope["model"].eval()


@pytest.mark.parametrize("auto", [False, True], ids=["PeftModel", "AutoPeftModel"])
@pytest.mark.parametrize("which", ["classify_run", "stsb_run"], ids=["3-class", "regression"])
def test_the_readme_recipe_reopens_a_classifier_as_gelora_predict_does(which, auto, request, tmp_path):
    """3 classes or 1 output: the head is not the base config's default 2 labels, and only model_config/ says so."""
    from transformers import AutoTokenizer

    run, evaluation = request.getfixturevalue(which)
    columns = ("sentence1", "sentence2") if which == "stsb_run" else ("text",)
    rows = [{c: r[c] for c in columns} for r in read_jsonl(evaluation)]
    preds = predict_rows(run, write_jsonl(tmp_path / "x.jsonl", rows), tmp_path / "preds.jsonl")
    model = readme_recipe(run / "adapter", auto)
    batch = AutoTokenizer.from_pretrained(run / "adapter")(*zip(*[[r[c] for c in columns] for r in rows]),
                                                           padding=True, truncation=True, max_length=24,
                                                           return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    if which == "stsb_run":
        assert model.config.problem_type == "regression" and logits.shape[1] == 1
        torch.testing.assert_close(logits[:, 0], torch.tensor([p["value"] for p in preds]), atol=1e-5, rtol=0)
        return
    names = sorted(LABELS)
    assert model.config.id2label == dict(enumerate(names)) and model.config.label2id == {n: i for i, n in
                                                                                          enumerate(names)}
    assert [model.config.id2label[i] for i in logits.argmax(-1).tolist()] == [p["label"] for p in preds]
    scores = torch.tensor([[p["scores"][name] for name in names] for p in preds])
    torch.testing.assert_close(logits.softmax(-1), scores, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(GLUE_TASKS))
def test_every_glue_head_names_its_classes_or_is_a_regression(tiny, name, tmp_path):
    """What the saved model config will say: as many class names as outputs (mnli: 3), or one regression output."""
    from gelora.train.tasks import make_task

    head = make_task(tiny_config(tiny, tmp_path, task=f"glue/{name}")).head_config()
    spec = GLUE_TASKS[name]
    if spec.is_regression:
        assert spec.num_labels == 1 and head == {"problem_type": "regression"}
        return
    assert head["problem_type"] == "single_label_classification"
    assert list(head["id2label"].values()) == LABEL_NAMES[name] and len(LABEL_NAMES[name]) == spec.num_labels
    assert head["label2id"] == {label: i for i, label in head["id2label"].items()}


def test_every_classifier_adapter_has_a_model_config_and_the_adapter_folder_stays_an_adapter(glue_run, stsb_run,
                                                                                               classify_run, sft_run):
    from transformers import AutoConfig, pipeline

    # a local folder with a config.json is read by Transformers as a whole model: none at the adapter's top
    runs = (glue_run[0], stsb_run[0], classify_run[0], sft_run)
    assert not any((run / "adapter" / "config.json").exists() for run in runs)
    assert not (sft_run / "adapter" / "model_config").exists()
    rte = AutoConfig.from_pretrained(glue_run[0] / "adapter" / "model_config")
    assert rte.id2label == dict(enumerate(LABEL_NAMES["rte"])) and rte.problem_type == "single_label_classification"
    # Transformers still opens the adapter folder as an adapter on its base model (a 2-class head fits the default)
    classifier = pipeline("text-classification", model=str(glue_run[0] / "adapter"))
    assert len(classifier(["a movie", "the plot"])) == 2


def test_full_fine_tuned_regression_reloads_the_saved_model(tiny, tmp_path, capsys):
    train = write_rows(tmp_path / "train.jsonl", 24, regression=True)
    evaluation = write_rows(tmp_path / "eval.jsonl", 8, seed=1, regression=True)
    options = DataOptions(data=str(train), eval_data=str(evaluation), text_columns=["text"], label_column="y")
    runner.train(tiny_config(tiny, tmp_path / "run", task="classify", method="full", data_options=options,
                             data_dir=None, epochs=1, max_eval_samples=None))
    result = evaluate_json(tmp_path / "run", evaluation, capsys)
    assert set(result["metrics"]) == {"pearson", "spearman"}
    assert result["metrics"] == final_scores(tmp_path / "run", result["metrics"])
    preds = predict_rows(tmp_path / "run", evaluation, tmp_path / "preds.jsonl")
    assert len(preds) == 8 and all(set(p) == {"value"} and isinstance(p["value"], float) for p in preds)


# ---- a local model given by a relative path


@pytest.fixture(scope="module")
def relative_run(tiny, tmp_path_factory) -> Path:
    """``gelora train bert ... --out runs/new`` in a project folder where ``bert`` is the tiny model."""
    project = tmp_path_factory.mktemp("project")
    (project / "bert").symlink_to(tiny["model"])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        runner.train(relative_config(tiny))
    return project


def relative_config(tiny: dict, out: str = "runs/new", **overrides):
    return tiny_config(tiny, out, model="bert", epochs=1, max_train_samples=8, max_eval_samples=8, **overrides)


def test_stored_model_names_are_absolute_for_local_files_only(tmp_path, monkeypatch):
    from gelora.models import stored_model_name

    (tmp_path / "bert").mkdir()
    (tmp_path / "small.gguf").touch()
    monkeypatch.chdir(tmp_path)
    assert stored_model_name("bert") == stored_model_name("./bert/") == stored_model_name(Path("bert")) == str(
        tmp_path / "bert")
    assert stored_model_name(Path("org/model")) == "org/model"  # a Path that names nothing here: kept as a Hub id
    assert stored_model_name("small.gguf") == str(tmp_path / "small.gguf")
    assert [stored_model_name(n) for n in ("minilm", "smollm2", "org/model", "missing.gguf")] == [
        "minilm", "smollm2", "org/model", "missing.gguf"]


def test_a_run_on_a_relative_model_folder_reopens_from_any_directory(tiny, relative_run, tmp_path, monkeypatch,
                                                                      capsys):
    run = relative_run / "runs" / "new"
    absolute = str(relative_run / "bert")  # the path as given, made absolute (a symlink stays a symlink)
    assert json.loads((run / "run.json").read_text())["model"] == absolute
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == absolute
    monkeypatch.chdir(relative_run)  # --resume with the same relative path from the same folder: the same run
    assert runner.train(relative_config(tiny, resume=True)) == json.loads((run / "metrics.json").read_text())
    monkeypatch.chdir(tmp_path)
    eval_file = Path(tiny["data_dir"]) / "rte" / "validation.jsonl"
    result = evaluate_json(run, eval_file, capsys)
    assert result["metrics"] == final_scores(run, result["metrics"])
    assert readme_recipe(run / "adapter", auto=True).config.num_labels == 2


def test_an_old_run_with_a_relative_model_path_works_from_its_folder_and_says_why_not_elsewhere(
        tiny, relative_run, tmp_path, monkeypatch, capsys):
    """Runs trained before stored the path as given: from the folder of training it still reads as it did then."""
    from gelora import models

    old = relative_run / "runs" / "old"
    shutil.copytree(relative_run / "runs" / "new", old)
    settings = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps(settings | {"model": "bert", "out": "runs/old"}))
    eval_file = Path(tiny["data_dir"]) / "rte" / "validation.jsonl"
    monkeypatch.chdir(relative_run)
    assert runner.train(relative_config(tiny, "runs/old", resume=True)) == json.loads(
        (old / "metrics.json").read_text())
    assert evaluate_json(Path("runs/old"), eval_file, capsys)["metrics"] == final_scores(old, ["accuracy"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    assert main(["evaluate", str(old), "--data", str(eval_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gelora evaluate: error: could not load model 'bert'") and len(err.splitlines()) == 1
    assert f"If 'bert' is a model folder relative to the folder it was trained in ({str(relative_run.resolve())!r}), " \
           "run gelora from there" in err


def test_a_run_whose_model_folder_moved_says_where_to_write_the_new_place(tiny, relative_run, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(relative_run / "runs" / "new", moved)
    settings = json.loads((moved / "run.json").read_text())
    (moved / "run.json").write_text(json.dumps(settings | {"model": str(tmp_path / "gone" / "bert")}))
    assert main(["evaluate", str(moved), "--data", str(Path(tiny["data_dir"]) / "rte" / "validation.jsonl")]) == 2
    assert capsys.readouterr().err == (f"gelora evaluate: error: the run's model {str(tmp_path / 'gone' / 'bert')!r} "
                                       "no longer exists; put it back there, or write its new place as \"model\" in "
                                       f"{str(moved / 'run.json')!r}\n")


# ---- question answering on a few SQuAD v2 rows


@pytest.fixture(scope="module")
def qa_run(tiny, tmp_path_factory) -> tuple[Path, Path]:
    if not SQUAD_V2.is_dir():
        pytest.skip(f"SQuAD v2 sample {SQUAD_V2} not present")
    root = tmp_path_factory.mktemp("qa_run")
    eval_file = write_jsonl(root / "eval.jsonl", read_jsonl(SQUAD_V2 / "validation.jsonl")[:10])
    options = DataOptions(data=str(SQUAD_V2), eval_data=str(eval_file))
    runner.train(tiny_config(tiny, root / "run", task="squad_v2", data_dir=None, data_options=options,
                             max_length=64, max_train_samples=16, max_eval_samples=None, epochs=1))
    return root / "run", eval_file


def test_qa_evaluate_and_predict_agree_with_the_run(qa_run, tmp_path, capsys):
    run, eval_file = qa_run
    result = evaluate_json(run, eval_file, capsys)
    assert result["metrics"]["total"] == 10
    assert result["metrics"] == final_scores(run, result["metrics"])
    examples = read_jsonl(eval_file)
    questions = write_jsonl(tmp_path / "q.jsonl", [{k: r[k] for k in ("id", "context", "question")}
                                                   for r in examples])
    preds = predict_rows(run, questions, tmp_path / "answers.jsonl")
    assert [p["id"] for p in preds] == [r["id"] for r in examples]
    assert all(p["answer"] in r["context"] for p, r in zip(preds, examples))
    # the predicted answers, scored officially, are what the run scored
    scores = squad_v2_scores({p["id"]: p["answer"] for p in preds}, examples)
    assert scores["f1"] == pytest.approx(result["metrics"]["f1"])


# ---- SFT


@pytest.fixture(scope="module")
def sft_run(chat_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sft_run")
    options = DataOptions(data=chat_model["data"], prompt_column="question", completion_column="answer",
                          eval_generate=3, max_new_tokens=4)
    runner.train(tiny_config(chat_model, root / "run", task="sft", data_options=options, epochs=1, max_length=48,
                             max_eval_samples=None))
    return root / "run"


def test_sft_evaluate_reproduces_loss_and_exact_match_and_keeps_generations(chat_model, sft_run, capsys):
    generations = (sft_run / "generations.jsonl").read_text()
    result = evaluate_json(sft_run, Path(chat_model["data"]) / "test.jsonl", capsys)
    assert {"loss", "perplexity", "exact_match"} <= set(result["metrics"])
    assert result["metrics"] == final_scores(sft_run, result["metrics"])
    assert (sft_run / "generations.jsonl").read_text() == generations  # the run's own file stays as trained


def test_sft_evaluate_without_generation_scores_the_loss_and_counts_unscored_rows(chat_model, sft_run, tmp_path,
                                                                                  capsys):
    rows = read_jsonl(Path(chat_model["data"]) / "test.jsonl")
    data = write_jsonl(tmp_path / "eval.jsonl", rows)
    result = evaluate_json(sft_run, data, capsys)
    loss_only = evaluate_json(sft_run, data, capsys, "--eval-generate", "0")
    assert loss_only["metrics"] == {k: result["metrics"][k] for k in ("loss", "perplexity")}
    # a prompt longer than the run's --max-length 48 leaves no answer token: counted, not scored
    long = write_jsonl(tmp_path / "long.jsonl", rows + [{**rows[0], "question": " ".join([rows[0]["question"]] * 30)}])
    assert main(["evaluate", str(sft_run), "--data", str(long), "--eval-generate", "0"]) == 0
    out = capsys.readouterr().out
    assert f"({len(rows) + 1} rows; 1 not scored: no completion token within the run's --max-length)" in out
    assert f"loss        {loss_only['metrics']['loss']:.4f}" in out


def test_sft_predict_generates_what_the_run_generated(chat_model, sft_run, tmp_path):
    trained = read_jsonl(sft_run / "generations.jsonl")
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"question": g["prompt"]} for g in trained])
    preds = predict_rows(sft_run, prompts, tmp_path / "out.jsonl")
    assert preds == [{"prompt": g["prompt"], "generated": g["generated"]} for g in trained]
    shorter = predict_rows(sft_run, prompts, tmp_path / "out.jsonl", "--overwrite", "--max-new-tokens", "1")
    assert all(len(s["generated"].split()) <= 1 for s in shorter) and len(shorter) == len(trained)


# ---- one-line refusals


def test_refusals_are_one_line_and_come_before_the_model_is_loaded(glue_run, classify_run, sft_run, tmp_path,
                                                                   capsys, monkeypatch):
    def no_model(*args):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr("gelora.train.trained.load_trained_model", no_model)
    run, eval_file = glue_run
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "metrics.json").unlink()
    no_pair = write_jsonl(tmp_path / "no_pair.jsonl", [{"sentence1": "a b"}])
    taken = tmp_path / "taken.jsonl"
    taken.write_text("keep me\n")
    unseen = write_jsonl(tmp_path / "unseen.jsonl", [{"text": "a b", "y": "sarcastic"}])
    (tmp_path / "cols").mkdir()  # not beside the others: the folder refusal below lists them
    untitled = write_jsonl(tmp_path / "cols" / "untitled.jsonl", [{"body": "a b", "y": "positive"}])
    cases = [
        (["evaluate", str(tmp_path / "nowhere"), "--data", str(eval_file)], "does not exist"),
        (["evaluate", str(tmp_path), "--data", str(eval_file)], "holds no gelora run"),
        (["evaluate", str(unfinished), "--data", str(eval_file)], "has not finished"),
        (["evaluate", str(run), "--data", str(tmp_path / "missing.jsonl")], "does not exist"),
        (["evaluate", str(run), "--data", str(no_pair)], "'label' column"),
        (["predict", str(run), "--data", str(no_pair), "--out", str(tmp_path / "p.jsonl")], "sentence2"),
        (["predict", str(run), "--data", str(eval_file), "--out", str(taken)], "--overwrite"),
        (["predict", str(run), "--data", str(eval_file), "--out", str(tmp_path / "p.csv")], "name the file .jsonl"),
        (["predict", str(run), "--data", str(eval_file), "--out", str(tmp_path / "p.jsonl"), "--max-new-tokens",
          "3"], "sft runs only"),
        (["evaluate", str(classify_run[0]), "--data", str(unseen)], "'sarcastic' appear only in the evaluation data, not among the training labels (negative, neutral, positive); the "
         "model cannot predict them: drop those evaluation rows"),
        (["evaluate", str(classify_run[0]), "--data", str(untitled)],  # no flag to name: the run's columns
         "column(s) text not in the evaluation data; available: body, y\n"),
        (["evaluate", str(run), "--data", str(eval_file), "--batch-size", "0"], "--batch-size"),
        (["evaluate", str(run), "--data", str(eval_file), "--eval-generate", "2"], "--eval-generate applies to sft"),
        (["evaluate", str(run), "--data", str(tmp_path)], "is a folder (with no_pair.jsonl, taken.jsonl, "
                                                           "unseen.jsonl); give one data file"),
        (["evaluate", str(sft_run), "--data", str(eval_file), "--eval-generate", "-1"], "--eval-generate must be"),
        (["predict", str(sft_run), "--data", str(no_pair), "--out", str(tmp_path / "p.jsonl")],
         "no prompt column 'question'"),
    ]
    for argv, phrase in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert phrase in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert taken.read_text() == "keep me\n" and not (tmp_path / "p.jsonl").exists()
