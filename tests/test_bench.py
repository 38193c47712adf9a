"""``gelora bench`` logic with a fake runner: method specs, matrix, skip/resume, settings checks, tables, CLI errors."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from helpers import FakeTrain, ok_row, write_rows

from gelora.bench import BenchSettings, expand, parse_method, parse_methods, run_bench
from gelora.bench.checks import check_data
from gelora.bench.methods import runner_methods
from gelora.bench.report import _pm, write_markdown
from gelora.bench.results import Summary, across_tasks, aggregate
from gelora.cli import main
from gelora.errors import GeloraError
from gelora.options import PlanOptions, ProfileOptions

KNOWN = ("gelora", "lora", "adalora", "eva", "full")


def settings(tiny, **kw) -> BenchSettings:
    base = dict(
        model=tiny["model"], tasks=("rte", "stsb"), methods=("lora", "gelora", "gelora-lb", "adalora"),
        seeds=(0, 1), budget_rank=4, epochs=1, max_length=16, profile_samples=40, data_dir=tiny["data_dir"],
    )
    return BenchSettings(**(base | kw))


# ---- method specs


def test_parse_plain_alias_and_options():
    assert parse_method("lora", KNOWN).method == "lora"
    lb = parse_method("gelora-lb", KNOWN)
    assert (lb.label, lb.method, lb.options) == ("gelora-lb", "gelora", {"rule": "lower-bound"})
    ab = parse_method("gelora:pooling=mean,offset=2", KNOWN)
    assert ab.label == "gelora:offset=2,pooling=mean"
    assert ab.profile_options(512) == ProfileOptions(pooling="mean", estimator="twonn", num_samples=512)
    assert ab.plan_options(8) == PlanOptions(rule="budget", offset=2, min_rank=1, budget_rank=8)
    assert lb.plan_options(8).budget_rank is None  # the lower-bound rule spends no budget
    assert ab.folder == "gelora_offset=2_pooling=mean"
    assert parse_method("lora:rank=2", KNOWN).rank(8) == 2
    full = parse_method("full:lr=5e-5", KNOWN)
    assert (full.label, full.lr(1e-3), parse_method("full", KNOWN).lr(1e-3)) == ("full:lr=5e-05", 5e-5, 1e-3)


def test_parse_list_splits_methods_from_options():
    specs = parse_methods("lora,gelora:offset=2,pooling=mean,eva;full", KNOWN)
    assert [s.label for s in specs] == ["lora", "gelora:offset=2,pooling=mean", "eva", "full"]


def test_gelora_geolora_gets_the_bench_plan_and_its_options():
    spec = parse_method("gelora-geolora:offset=0", (*KNOWN, "gelora-geolora"))
    assert spec.is_gelora and spec.plan_options(8) == PlanOptions(rule="budget", offset=0, budget_rank=8)
    assert not parse_method("geolora", (*KNOWN, "geolora")).is_gelora


def test_every_runner_method_is_accepted_and_a_new_one_needs_no_bench_change(monkeypatch):
    import gelora.bench.methods as bench_methods

    assert [parse_method(m).method for m in runner_methods()] == list(runner_methods())
    with pytest.raises(GeloraError, match="unknown method 'sparse'"):
        parse_method("sparse")
    monkeypatch.setattr(bench_methods, "runner_methods", lambda: (*runner_methods(), "sparse"))
    assert [s.method for s in parse_methods("lora,sparse:rank=2")] == ["lora", "sparse"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("lorax", "unknown method 'lorax'"),
        ("lora:offset=1", "has no option 'offset'"),
        ("gelora:offset", "KEY=VALUE"),
        ("gelora:offset=two", "must be an integer"),
        ("lora:rank=0", ">= 1"),
        ("gelora:offset=-1", ">= 0"),
        ("full:lr=fast", "positive number"),
        ("full:lr=0", "positive number"),
        ("gelora:pooling=max", "must be one of tokens, mean"),
        ("gelora:rule=upper", "must be one of lower-bound, budget"),
        ("lora,lora", "more than once"),
        ("", "empty"),
    ],
)
def test_bad_method_specs(text, message):
    with pytest.raises(GeloraError, match=message):
        parse_methods(text, KNOWN)


# ---- settings


@pytest.mark.parametrize(
    "change, message",
    [
        ({"budget_rank": 0}, "--budget-rank must be at least 1"),
        ({"seeds": ()}, "--seeds"),
        ({"seeds": (1, 1)}, "--seeds"),
        ({"tasks": ()}, "--tasks is empty"),
        ({"epochs": 0}, "--epochs"),
        ({"methods": ("lora", "nope")}, "unknown method 'nope'"),
        ({"eval_generate": 5}, "--eval-generate is for sft tasks, and --tasks has none; drop it"),
        ({"prompt_column": "q", "completion_column": "a"}, "--prompt-column, --completion-column are for sft tasks"),
        ({"completion_column": "a"}, "--completion-column is for sft tasks"),
        ({"eval_generate": -1}, "--eval-generate must be >= 0"),
        ({"eval_batch_size": 0}, "--eval-batch-size must be at least 1"),
    ],
)
def test_bad_settings(tiny, change, message):
    with pytest.raises(GeloraError, match=message):
        settings(tiny, **change).validate()


def test_sft_columns_for_a_preset_alone_are_refused(tiny, tmp_path):
    (tmp_path / "gsm8k").mkdir()
    preset = settings(tiny, tasks=("sft:gsm8k",), data_dir=str(tmp_path / "glue"), prompt_column="q",
                      completion_column="a")
    with pytest.raises(GeloraError, match="name the columns of sft:FILE tasks, and sft:gsm8k has its own; drop them"):
        preset.validate()


def test_eval_settings_reach_the_runner_and_do_not_split_a_bench(tiny, tmp_path):
    (tmp_path / "gsm8k").mkdir()
    base = settings(tiny, tasks=("rte", "sft:gsm8k"), data_dir=str(tmp_path / "glue"), eval_generate=4)
    rte, sft = base.bench_tasks()
    assert base.run_config(sft, method="lora", out="").data_options.eval_generate == 4
    assert base.run_config(rte, method="lora", out="").data_options.eval_generate == 0  # GLUE refuses it
    faster = settings(tiny, tasks=("rte", "sft:gsm8k"), data_dir=str(tmp_path / "glue"), eval_generate=4,
                      eval_batch_size=64)
    assert faster.run_config(sft, method="lora", out="").evaluation_batch_size == 64
    assert faster.identity() == base.identity()  # a faster evaluation may continue the same bench


def test_sft_columns_reach_the_sft_tasks_only(tiny):
    s = settings(tiny, tasks=("rte", "sft:rows.jsonl", "sft:gsm8k", "classify:c.csv"), prompt_column="instruction",
                 completion_column="output")
    rte, own, gsm8k, classify = (s.run_config(t, method="lora", out="").data_options for t in s.bench_tasks())
    assert (own.prompt_column, own.completion_column) == ("instruction", "output")
    assert (gsm8k.prompt_column, gsm8k.completion_column) == ("question", "answer")  # its own columns
    assert rte.given() == set() and classify.prompt_column is None and classify.completion_column is None


def test_unknown_task(tiny):
    with pytest.raises(GeloraError, match="unknown task 'boolq'"):
        settings(tiny, tasks=("rte", "boolq"))


def test_matrix_order_and_folders(tiny, tmp_path):
    runs = expand(settings(tiny), tmp_path)
    assert len(runs) == 2 * 4 * 2
    assert [(r.seed, r.task) for r in runs[:5]] == [(0, "rte")] * 4 + [(0, "stsb")]  # seed by seed
    assert runs[1].out == tmp_path / "runs" / "rte" / "gelora" / "seed0"


# ---- the bench loop


def test_bench_runs_skips_and_reports(tiny, tmp_path):
    fake = FakeTrain()
    s = settings(tiny)
    outcome = run_bench(s, tmp_path, train=fake, log=lambda m: None)
    assert len(fake.configs) == 16 and not outcome["failures"]
    gelora = [c for c in fake.configs if c.method == "gelora"]
    assert all(c.plan and c.plan.endswith(".plan.json") for c in gelora)
    assert all(c.resume for c in fake.configs)
    assert {c.rank for c in fake.configs if c.method != "gelora"} == {4}  # gelora: the plan has the budget
    assert {c.rank for c in gelora} == {None}
    # one profile per task (shared by gelora and gelora-lb and both seeds), one plan per variant
    plans = tmp_path / "plans"
    assert len(list(plans.glob("*/profile-*.timing.json"))) == 2
    assert sorted(p.name for p in (plans / "rte").glob("*.plan.json")) == ["gelora-lb.plan.json", "gelora.plan.json"]
    budget = json.loads((plans / "rte" / "gelora.plan.json").read_text())
    lower = json.loads((plans / "rte" / "gelora-lb.plan.json").read_text())
    assert budget["rule"] == "budget" and lower["rule"] == "lower-bound"

    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 16
    row = next(json.loads(x) for x in lines if '"gelora"' in x and '"stsb"' in x)
    assert row["plan_seconds"] > 0 and math.isclose(row["wall_seconds"], row["train_wall_seconds"] + row["plan_seconds"])
    assert row["secondary_metric"] == "spearman"
    md = (tmp_path / "results.md").read_text()
    assert "### rte (accuracy; n = 2 seeds)" in md and "### stsb (pearson, spearman; n = 2 seeds)" in md
    assert "### Mean across tasks" in md and "### Targets" not in md  # verdicts: benchmarks/verdicts.py
    assert (tmp_path / "pareto.png").stat().st_size > 1000

    # second call: every run is finished, nothing is trained; a half-finished run (no metrics.json) is resumed
    (tmp_path / "runs" / "rte" / "lora" / "seed1" / "metrics.json").unlink()
    again = FakeTrain()
    run_bench(s, tmp_path, train=again, log=lambda m: None)
    assert [(c.task, c.method, c.seed) for c in again.configs] == [("glue/rte", "lora", 1)]
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 16

    # a torn metrics.json counts as unfinished
    (tmp_path / "runs" / "stsb" / "adalora" / "seed0" / "metrics.json").write_text('{"final": ')
    torn = FakeTrain()
    run_bench(s, tmp_path, train=torn, log=lambda m: None)
    assert [(c.task, c.method) for c in torn.configs] == [("glue/stsb", "adalora")]

    # more seeds may extend the bench; other training settings are refused unless --overwrite
    run_bench(settings(tiny, seeds=(0, 1, 2), methods=("lora",)), tmp_path, train=FakeTrain(), log=lambda m: None)
    with pytest.raises(GeloraError, match="different settings .*epochs: 1 -> 2"):
        run_bench(settings(tiny, epochs=2), tmp_path, train=FakeTrain(), log=lambda m: None)
    # spelling out a default is the same setting: --text-columns text is what leaving it out means
    run_bench(settings(tiny, text_columns=["text"]), tmp_path, train=FakeTrain(), log=lambda m: None)
    fresh = FakeTrain()
    run_bench(settings(tiny, epochs=2, methods=("lora",)), tmp_path, overwrite=True, train=fresh, log=lambda m: None)
    assert len(fresh.configs) == 4 and not (tmp_path / "plans").exists()


def test_failed_run_is_recorded_and_retried(tiny, tmp_path):
    s = settings(tiny, tasks=("rte",), methods=("lora", "adalora"), seeds=(0,))
    outcome = run_bench(s, tmp_path, train=FakeTrain(fail_on="adalora"), log=lambda m: None)
    assert outcome["failures"] == ["rte adalora seed 0: RuntimeError: adalora exploded"]
    assert "### Failed runs" in (tmp_path / "results.md").read_text()
    retry = FakeTrain()
    outcome = run_bench(s, tmp_path, train=retry, log=lambda m: None)
    assert [c.method for c in retry.configs] == ["adalora"] and not outcome["failures"]


def test_report_only_trains_nothing(tiny, tmp_path):
    # the report needs no data: it may be written on a machine without the GLUE folder
    s = settings(tiny, tasks=("rte",), methods=("lora", "adalora"), seeds=(0, 1), data_dir=str(tmp_path / "no-data"))
    run_bench(settings(tiny, tasks=("rte",), methods=("lora",), seeds=(0,)), tmp_path, train=FakeTrain(), log=print)
    outcome = run_bench(s, tmp_path, report_only=True, log=print)
    assert [(r["method"], r["seed"]) for r in outcome["rows"]] == [("lora", 0)]
    assert "n = 1 seed)" in (tmp_path / "results.md").read_text()
    with pytest.raises(GeloraError, match="--report-only with --overwrite"):
        run_bench(s, tmp_path, report_only=True, overwrite=True, log=print)


@pytest.mark.parametrize("existing", [False, True], ids=["missing", "empty"])
def test_report_only_needs_a_bench_and_creates_nothing(tiny, tmp_path, capsys, existing):
    out = tmp_path / "typo"
    if existing:
        out.mkdir()
    argv = ["bench", "--model", tiny["model"], "--out", str(out), "--data-dir", tiny["data_dir"], "--report-only"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds no bench (no bench.json)" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out.exists() == existing and (not existing or not any(out.iterdir()))


def _unlabelled(path):
    """A classify file whose second row has an empty label cell."""
    path.write_text("text,other,y\ngood film,a,pos\nbad film,b,\n")
    return path


def _classify(folder, *flags: str) -> list[str]:
    """``--tasks classify:FILE`` over a file of ``text``, ``other`` and ``y`` columns, and ``flags``."""
    return ["--tasks", f"classify:{write_rows(folder / 'rows.csv', 20)}", *flags]


@pytest.mark.parametrize(
    "case, message",
    [
        (lambda d: ["--tasks", f"classify:{d / 'nofile.csv'}"], "data file .*nofile.csv' does not exist; fix the path"),
        (lambda d: ["--tasks", f"classify:{d}"], "folder .* has no train.jsonl/.json/.csv/.parquet"),
        (lambda d: _classify(d, "--label-column", "stars"),
         r"column\(s\) stars not in the training data; available: text, other, y; fix --text-columns / --label-column"),
        (lambda d: _classify(d, "--label-column", "y", "--text-columns", "review"), r"column\(s\) review not in"),
        (lambda d: ["--tasks", f"qa:{write_rows(d / 'qa.jsonl', 20)}"],
         "question answering data lacks the column.s. id, context, question, answers"),
        (lambda d: ["--tasks", f"classify:{write_rows(d / 'one.csv', 1)}", "--label-column", "y"],
         r"holding out 0.1 of 1 row\(s\) for evaluation leaves no training or no evaluation row"),  # no traceback either
        (lambda d: ["--tasks", f"classify:{_unlabelled(d / 'rows.csv')}", "--label-column", "y"],
         r"1 training row\(s\) have no label in column 'y'"),
    ],
    ids=["missing-file", "folder-without-train", "label-column", "text-columns", "qa-schema", "one-row", "no-label"],
)
def test_task_data_is_checked_before_the_bench_folder_is_made(tiny, tmp_path, capsys, case, message):
    out = tmp_path / "bench"
    argv = ["bench", "--model", tiny["model"], "--methods", "lora", "--seeds", "0", "--max-length", "32",
            "--out", str(out), *case(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(f"^gelora bench: error: --tasks [^ ]+: {message}", err), err
    assert not out.exists()


def test_a_preset_the_hub_cannot_give_says_where_a_local_copy_goes(chat_model, tiny, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    monkeypatch.setattr("gelora.models.hub_reachable", lambda: False)
    (tmp_path / "glue").mkdir()  # no gsm8k/ beside it: the Hub is asked
    settings = BenchSettings(model=chat_model["model"], tasks=("sft:gsm8k",), methods=("lora",), seeds=(0,),
                             data_dir=str(tmp_path / "glue"))
    with pytest.raises(GeloraError, match="could not load 'openai/gsm8k'.*; a local copy is read instead from a "
                                          r"folder gsm8k/ beside the GLUE folder of --data-dir \(or \$GELORA_DATA_DIR\)$"):
        check_data(settings)
    with pytest.raises(GeloraError, match="needs a decoder") as refused:  # not about data: no word on local copies
        check_data(dataclasses.replace(settings, model=tiny["model"]))
    assert "local copy" not in str(refused.value)


def test_sft_columns_are_checked_before_any_run(chat_model, tmp_path):
    def check(**columns):
        check_data(BenchSettings(model=chat_model["model"], tasks=(f"sft:{chat_model['data']}",), methods=("lora",),
                                 seeds=(0,), max_length=48, **columns))

    with pytest.raises(GeloraError, match="no SFT columns .* name two with --prompt-column/--completion-column"):
        check()
    with pytest.raises(GeloraError, match="column.s. output not in the training data; available: question, answer"):
        check(prompt_column="question", completion_column="output")
    with pytest.raises(GeloraError, match="--prompt-column and --completion-column go together"):
        check(prompt_column="question")
    assert check(prompt_column="question", completion_column="answer") is None  # the data's own columns pass


def test_refuses_foreign_folder(tiny, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GeloraError, match="no bench.json"):
        run_bench(settings(tiny), tmp_path, train=FakeTrain(), log=lambda m: None)


# ---- aggregation


def test_aggregate_mean_std_and_step_ratio():
    rows = [ok_row("rte", "lora", 0, 0.5), ok_row("rte", "lora", 1, 0.7), ok_row("rte", "gelora", 0, 0.6, step=1.1)]
    cells = {c.method: c for c in aggregate(rows)}
    assert math.isclose(cells["lora"].score.mean, 0.6) and math.isclose(cells["lora"].score.std, 0.1414, rel_tol=1e-3)
    assert cells["gelora"].score == Summary(0.6, 0.0, 1)
    assert math.isclose(cells["gelora"].step_vs_lora, 1.1)
    # a single seed is reported without a spread it does not have
    assert (_pm(cells["gelora"].score), _pm(cells["lora"].score)) == ("0.6000", "0.6000 ± 0.1414")


def test_report_of_methods_without_a_common_task(tmp_path):
    # gelora finished only rte, lora only mrpc: the tables show what there is, and pass no verdict
    rows = [ok_row("rte", "gelora", 0, 0.6), ok_row("mrpc", "lora", 0, 0.7)]
    s = BenchSettings(model="m", tasks=("rte", "mrpc"), methods=("gelora", "lora"), seeds=(0,))
    md = write_markdown(tmp_path / "results.md", rows, s, [])
    assert "| gelora | 1 | 0.6000 |" in md and "| lora | 1 | 0.7000 |" in md
    mean_rows = md.split("### Mean across tasks")[1].splitlines()
    assert [line.split(" | ")[1] for line in mean_rows if line.startswith(("| gelora", "| lora"))] == ["–", "–"]
    assert "Targets" not in md and "**met**" not in md and "**missed**" not in md


def test_mean_across_tasks_puts_squad_f1_on_the_scale_of_accuracies(tmp_path):
    # SQuAD's F1 is stored in 0..100 and accuracy in 0..1: averaged as they are, 55 and 0.3 made 27.65
    rows = [ok_row("qa:q.jsonl", "lora", 0, 55.0) | {"metric": "f1"}, ok_row("classify:c.csv", "lora", 0, 0.3)]
    s = BenchSettings(model="m", tasks=("qa:q.jsonl", "classify:c.csv"), methods=("lora",), seeds=(0,))
    md = write_markdown(tmp_path / "results.md", rows, s, [])
    heading, *table = md.split("### Mean across tasks")[1].splitlines()
    assert "on one 0-1 scale: f1 of qa:q.jsonl / 100" in heading
    assert "| lora | 0.4250 | 1 |" in "\n".join(table)
    assert "| lora | 1 | 55.0000 |" in md  # the task's own table keeps SQuAD's scale


def test_mean_across_tasks_says_which_loss_task_it_leaves_out(tmp_path):
    rows = [ok_row("sft:s.jsonl", "lora", 0, 1.5) | {"metric": "loss", "greater_is_better": False},
            ok_row("classify:c.csv", "lora", 0, 0.3)]
    s = BenchSettings(model="m", tasks=("sft:s.jsonl", "classify:c.csv"), methods=("lora",), seeds=(0,))
    heading, *table = write_markdown(tmp_path / "results.md", rows, s, []).split("### Mean across tasks")[1].splitlines()
    assert heading == " (classify:c.csv; main metric of each; without sft:s.jsonl: a loss does not average with scores)"
    assert "| lora | 0.3000 | 1 |" in "\n".join(table)


def test_across_tasks_uses_seeds_run_on_every_task():
    rows = [ok_row("rte", "lora", 0, 0.5), ok_row("mrpc", "lora", 0, 0.7), ok_row("rte", "lora", 1, 0.9)]
    assert across_tasks(rows, "lora", ["rte", "mrpc"]) == Summary(0.6, 0.0, 1)
    assert across_tasks(rows, "lora", ["rte", "mrpc"], {"rte": 100.0}) == Summary((0.005 + 0.7) / 2, 0.0, 1)


# ---- CLI


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--methods", "lora,sparse"], "unknown method 'sparse'"),
        (["--tasks", "rte,imdb"], "unknown task 'imdb'"),
        (["--budget-rank", "0"], "--budget-rank must be at least 1"),
        (["--seeds", "0,one"], "--seeds must be comma-separated integers"),
    ],
)
def test_cli_bad_input(tiny, tmp_path, capsys, extra, message):
    argv = ["bench", "--model", tiny["model"], "--out", str(tmp_path / "b"), "--data-dir", tiny["data_dir"], *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_help_documents_method_specs(capsys, monkeypatch):
    from gelora.train import methods

    # A method added to the registry is named in the help and accepted by --methods, with no change to the bench.
    monkeypatch.setitem(methods.METHODS, "toy", type("Toy", (methods.LoRA,), {"name": "toy"}))
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in methods.METHODS)
    assert parse_methods("toy,gelora:pooling=mean,gelora-lb")[0].method == "toy"
    assert "gelora:pooling=mean" in out and "gelora-lb" in out


def test_cli_help_names_every_runner_method_and_its_examples_parse(capsys):
    assert main(["bench", "--help"]) == 0
    epilog = capsys.readouterr().out.split("methods: NAME", 1)[1]
    named = re.search(r"NAME is a method of the training runner \(([^)]*)\)", epilog).group(1)
    assert set(runner_methods()) <= {m.strip() for m in named.split(",")}
    # the aliases (indented lines), the e.g. examples and the ablation list must all be specs the bench accepts
    examples = [*re.findall(r"^ {4}(\S+) {2,}", epilog, re.M), *re.findall(r"e\.g\. (\S+)", epilog)]
    examples += re.findall(r"--methods (\S+)", epilog)
    assert len(examples) >= 5
    for spec in examples:
        assert parse_methods(spec), spec  # raises GeloraError on a method or option the bench does not know


def test_a_local_model_is_the_same_bench_typed_relative_or_absolute(tiny, monkeypatch):
    """Its runs record the folder absolute; a bench resumed from another directory with the absolute path (or
    an older bench.json that saved the relative one, read from its directory) is the same bench."""
    from pathlib import Path

    model = Path(tiny["model"])
    monkeypatch.chdir(model.parent)
    relative = BenchSettings(model=model.name, tasks=("rte",), methods=("lora",), seeds=(0,))
    absolute = BenchSettings(model=str(model), tasks=("rte",), methods=("lora",), seeds=(0,))
    assert relative.identity() == absolute.identity() and relative.identity()["model"] == str(model)
