import json
import re
import shutil

import pytest
import torch
from helpers import make_texts, tiny_model

from gelora.cli import main
from gelora.errors import GeloraError
from gelora.models import load_backbone
from gelora.plan import plan_ranks
from gelora.profile import Profile, profile_model


def test_profile_has_l_plus_one_boundaries_and_round_trips(tmp_path, tokenizer):
    profile = profile_model(tiny_model("bert"), tokenizer, make_texts(30), bootstrap=20, progress=False,
                            data={"task": "synthetic"})
    assert len(profile.boundaries) == 3 and profile.n_points > 100
    assert all(b.id is not None and b.ci_low <= b.id <= b.ci_high for b in profile.boundaries)
    assert profile.timings["forward_s"] > 0 and profile.data["n_texts"] == 30
    profile.to_json(tmp_path / "p.json")
    assert Profile.from_json(tmp_path / "p.json") == profile


def test_num_samples_takes_a_seeded_subset(tokenizer):
    kwargs = dict(pooling="mean", num_samples=25, bootstrap=0, progress=False)
    a = profile_model(tiny_model("bert"), tokenizer, make_texts(60), seed=3, **kwargs)
    b = profile_model(tiny_model("bert"), tokenizer, make_texts(60), seed=3, **kwargs)
    assert a.n_points == 25 and a.dimensions == b.dimensions


def test_first_pooling_at_bert_embeddings_is_undefined_and_plan_still_works(tokenizer):
    model = tiny_model("bert")
    profile = profile_model(model, tokenizer, make_texts(40), pooling="first", bootstrap=20, progress=False)
    first = profile.boundaries[0]
    assert first.id is None and "identical" in first.reason
    assert all(b.id is not None for b in profile.boundaries[1:])
    plan = plan_ranks(profile, model)
    assert plan.blocks[0].lb == 0 and any("boundary 0" in note for note in plan.notes)


def test_too_few_points_is_a_clear_error(tokenizer):
    with pytest.raises(GeloraError, match="need at least 20"):
        profile_model(tiny_model("bert"), tokenizer, make_texts(5), pooling="mean", progress=False)
    with pytest.raises(GeloraError, match="need at least 20"):
        profile_model(tiny_model("bert"), tokenizer, make_texts(4), tokens_per_sequence=1, progress=False)


def test_bad_estimator_fails_before_the_forward_passes(tokenizer):
    with pytest.raises(GeloraError, match="unknown estimator"):
        profile_model(tiny_model("bert"), tokenizer, make_texts(30), estimator="mle", progress=False)


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture
def model_dir(tmp_path, tokenizer):
    path = tmp_path / "tiny-bert"
    tiny_model("bert").save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"premise": a, "hypo": b, "label": 0}) + "\n" for a, b in make_texts(40, True)))
    return path


def test_cli_profile_plan_compare(tmp_path, model_dir, data_file, capsys):
    out = tmp_path / "run"
    args = ["profile", str(model_dir), "--data", str(data_file), "--text-columns", "premise,hypo", "--bootstrap", "20",
            "--tokens-per-sequence", "4", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert main(args[:-3] + ["--pooling", "mean", "--out", str(tmp_path / "mean"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "embeddings" in printed and "block 1 out" in printed
    profile = json.loads((out / "profile.json").read_text())
    assert profile["n_points"] == 160 and len(profile["boundaries"]) == 3 and (out / "profile.png").stat().st_size

    assert main(["plan", str(out / "profile.json"), "--rule", "budget", "--budget-rank", "4", "--out", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["rule"] == "budget" and plan["total_params"] == 4 * 2 * (4 * 64 + 2 * (32 + 37))
    assert (out / "plan.png").exists() and "budget" in capsys.readouterr().out

    assert main(["compare-profiles", str(out / "profile.json"), str(tmp_path / "mean" / "profile.json"),
                 "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "compare.png").exists()


def test_a_profile_of_a_relative_model_folder_plans_from_any_directory(model_dir, data_file, tmp_path, monkeypatch):
    monkeypatch.chdir(model_dir.parent)
    assert main(["profile", model_dir.name, "--data", str(data_file), "--text-columns", "premise,hypo",
                 "--bootstrap", "0", "--tokens-per-sequence", "4", "--out", "prof", "--no-progress"]) == 0
    assert json.loads((tmp_path / "prof" / "profile.json").read_text())["model"] == str(model_dir)
    monkeypatch.chdir("/")  # `gelora plan` loads the profiled model
    assert main(["plan", str(tmp_path / "prof" / "profile.json"), "--out", str(tmp_path / "plan")]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--text-columns", "sentence"], "sentence not in the data; available: premise, hypo, label"),
        ([], "needs one or two --text-columns.*available: premise, hypo, label"),
        (["--text-columns", "premise", "--num-samples", "3", "--pooling", "mean"], "need at least 20"),
    ],
)
def test_cli_bad_data(model_dir, data_file, tmp_path, capsys, extra, message):
    code = main(["profile", str(model_dir), "--data", str(data_file), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert __import__("re").search(message, err)


def test_cli_empty_file_unknown_task_budget_zero(model_dir, tmp_path, capsys, tokenizer):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["profile", str(model_dir), "--data", str(empty), "--text-columns", "a", "--out", str(tmp_path)]) == 2
    assert "is empty" in capsys.readouterr().err
    assert main(["profile", str(model_dir), "--task", "glue/imdb", "--out", str(tmp_path)]) == 2
    assert "unknown task 'glue/imdb'" in capsys.readouterr().err
    profile = profile_model(load_backbone(str(model_dir)), tokenizer, make_texts(30), pooling="mean", bootstrap=0,
                            progress=False)
    profile.to_json(tmp_path / "profile.json")
    assert main(["plan", str(tmp_path / "profile.json"), "--rule", "budget", "--budget-rank", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--budget-rank must be at least 1" in err and "Traceback" not in err
    with pytest.raises(TypeError, match="takes a loaded model.*load_backbone"):
        profile_model(str(model_dir), tokenizer, make_texts(30))


@pytest.mark.slow  # the real MiniLM; the tiny-model CLI test above covers the same path fast
def test_minilm_on_rte(glue_dir, tmp_path, capsys):
    """The real model on 200 RTE texts: seven boundaries, IDs well inside (1, 384), a plan over its 36 linear layers."""
    code = main(["profile", "minilm", "--task", "glue/rte", "--data-dir", str(glue_dir), "--num-samples", "200", "--max-length", "64",
                 "--bootstrap", "20", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    profile = Profile.from_json(tmp_path / "profile.json")
    assert len(profile.boundaries) == 7 and profile.n_points > 1000
    assert all(1 < d < 384 for d in profile.dimensions)
    assert main(["plan", str(tmp_path / "profile.json"), "--out", str(tmp_path)]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [len(b["modules"]) for b in plan["blocks"]] == [6] * 6
    assert all(b["rank"] == max(b["lb"] + 1, 1) for b in plan["blocks"])


def test_cli_broken_inputs_give_one_line_errors(model_dir, data_file, tmp_path, capsys):
    def fails(args: list[str], pattern: str) -> None:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err  # (datasets may print its progress bars before the one error line)
        assert re.search(pattern, err.strip().splitlines()[-1]), err

    base = ["profile", str(model_dir), "--text-columns", "premise,hypo", "--no-progress"]
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"premise": "a", "hypo": "b"}\n{"premise": "a", oops\n')
    fails([*base, "--data", str(bad_json), "--out", str(tmp_path / "o")], r"could not read .*bad.jsonl as json")
    holes = tmp_path / "holes.jsonl"
    holes.write_text("".join(json.dumps({"premise": None if i == 3 else "a b", "hypo": "c"}) + "\n" for i in range(40)))
    fails([*base, "--data", str(holes), "--out", str(tmp_path / "o")], r"column 'premise' holds nothing \(an empty cell or null\) in row 3")
    fails([*base, "--data", str(data_file), "--out", str(tmp_path / "o"), "--device", "tpu9"], "unknown device 'tpu9'")
    if not torch.cuda.is_available():
        fails([*base, "--data", str(data_file), "--out", str(tmp_path / "o"), "--device", "cuda"], "needs a CUDA GPU")
    fails([*base, "--data", str(data_file), "--out", str(tmp_path / "o"), "--num-samples", "-5"], "at least 1")
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    fails([*base, "--data", str(data_file), "--out", str(blocker / "sub")], "cannot be created: .*a-file' is a file")
    assert blocker.read_text() == "mine"
    no_type = tmp_path / "no-type"
    no_type.mkdir()
    (no_type / "config.json").write_text("{}")
    fails(["profile", str(no_type), "--data", str(data_file), "--text-columns", "premise", "--out", str(tmp_path / "o")],
          "could not load model")


# ----------------------------------------------------------------- bad input fails first, in one line


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the command loads a model: every input check comes before the load."""
    import gelora.models

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(gelora.models, "load_backbone", refuse)


def fails_in_one_line(capsys, args: list[str], pattern: str, out) -> None:
    """Exit 2, the error as the last stderr line (datasets may print progress bars before it), no traceback,
    nothing written to ``out``."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("gelora ")]
    assert "Traceback" not in err and errors == [err.splitlines()[-1]]
    assert re.search(pattern, errors[0]), err
    assert not out.exists() or not any(p.suffix in (".json", ".png") for p in out.iterdir())


def _rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--num-samples", "0"], "--num-samples must be at least 1"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--bootstrap", "-2"], "--bootstrap must be 0"),
        (["--max-points", "5"], "--max-points 5 keeps too few points; use at least 20"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--device", "tpu9"], "unknown device 'tpu9'"),
        (["--max-length", "2"], "--max-length 2 leaves no room for content.*3 special.*use --max-length 4 or more"),
    ],
)
def test_cli_profile_checks_settings_before_loading_the_model(model_dir, data_file, tmp_path, capsys, no_model_load,
                                                              extra, pattern):
    out = tmp_path / "o"
    args = ["profile", str(model_dir), "--data", str(data_file), "--text-columns", "premise,hypo", "--out", str(out)]
    fails_in_one_line(capsys, [*args, *extra], pattern, out)


@pytest.mark.parametrize(
    "rows, pattern",
    [
        ([{"premise": "", "hypo": " "}] * 40, "none of the 40 texts has any content"),
        ([{"premise": "the cat sleeps", "hypo": "a dog runs"}] * 60, r"60 texts \(1 distinct\) give at most 8 distinct"),
    ],
)
def test_cli_profile_texts_that_cannot_give_a_profile(model_dir, tmp_path, capsys, no_model_load, rows, pattern):
    data = _rows(tmp_path / "texts.jsonl", rows)
    out = tmp_path / "o"
    args = ["profile", str(model_dir), "--data", str(data), "--text-columns", "premise,hypo", "--out", str(out)]
    fails_in_one_line(capsys, args, pattern, out)


def test_cli_profile_task_with_text_columns_and_out_file(model_dir, data_file, tmp_path, capsys, no_model_load):
    out = tmp_path / "o"
    fails_in_one_line(capsys, ["profile", str(model_dir), "--task", "glue/rte", "--text-columns", "premise",
                               "--out", str(out)], "--text-columns only applies to --data.*drop --text-columns", out)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    fails_in_one_line(capsys, ["profile", str(model_dir), "--data", str(data_file), "--text-columns", "premise",
                               "--out", str(taken)], "--out .*taken' is a file; give a folder", out)
    assert taken.read_text() == "mine"


def test_no_boundary_with_an_id_is_an_error(tokenizer, monkeypatch):
    import gelora.profile

    monkeypatch.setattr(gelora.profile, "collect_hidden_states", lambda *a, **k: [torch.ones(40, 4)] * 3)
    with pytest.raises(GeloraError, match="no layer boundary has an ID.*all 40 points are identical"):
        profile_model(tiny_model("bert"), tokenizer, make_texts(30), bootstrap=0, progress=False)


def test_cli_profile_warns_on_undefined_boundaries_and_replaces_the_folder_set(model_dir, data_file, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("plan.json", "plan.png", "notes.txt"):  # a plan made from an earlier profile, and a user's file
        (out / name).write_text("old")
    args = ["profile", str(model_dir), "--data", str(data_file), "--text-columns", "premise,hypo", "--pooling", "first",
            "--bootstrap", "0", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "gelora profile: warning: boundary 0 (embeddings) has no ID: all 40 points are identical" in printed.err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "profile.json", "profile.png"]
    assert "removed plan.json, plan.png" in printed.out


# ------------------------------------------------------------------------- plan: what it reads and for what


@pytest.fixture
def profile_file(tmp_path, model_dir):
    """A profile of the tiny BERT in ``model_dir`` (synthetic IDs: no forward pass needed)."""
    from gelora.profile import BoundaryID, architecture

    boundaries = [BoundaryID(i, f"b{i}", d, None, None, 100, 100) for i, d in enumerate([3.0, 5.0, 6.5])]
    profile = Profile(str(model_dir), {}, "tokens", "twonn", 0, 100, boundaries,
                      model_config=architecture(tiny_model("bert")))
    path = tmp_path / "profiled" / "profile.json"
    profile.to_json(path)
    return path


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--min-rank", "100000"], "--min-rank 100000 is above the largest rank block 0 can use: 32"),
        (["--rule", "budget", "--budget-rank", "100000"], "--budget-rank 100000 is above .*use --budget-rank 32"),
        (["--budget-rank", "4"], "--budget-rank only applies to --rule budget"),
        (["--offset", "-1"], "--offset and --min-rank must be >= 0"),
    ],
)
def test_cli_plan_refuses_settings_it_cannot_honour(profile_file, tmp_path, capsys, extra, pattern):
    out = tmp_path / "plan"
    fails_in_one_line(capsys, ["plan", str(profile_file), "--out", str(out), *extra], pattern, out)


def test_cli_plan_reads_a_hand_edited_profile_in_one_line(profile_file, tmp_path, capsys):
    obj = json.loads(profile_file.read_text())
    obj["boundaries"][1]["id"] = "5.0"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(obj))
    out = tmp_path / "plan"
    fails_in_one_line(capsys, ["plan", str(edited), "--out", str(out)],
                      "profile boundary 1: 'id' is '5.0', not a number or null", out)


def test_cli_plan_compares_the_architecture(profile_file, model_dir, tmp_path, capsys):
    other = tmp_path / "tiny-roberta"  # same depth and width, another architecture
    tiny_model("roberta").save_pretrained(other)
    out = tmp_path / "plan"
    fails_in_one_line(capsys, ["plan", str(profile_file), "--model", str(other), "--out", str(out)],
                      r"another architecture \(model_type 'bert' profiled, 'roberta' here\)", out)
    copy = tmp_path / "copy-of-tiny-bert"
    shutil.copytree(model_dir, copy)
    assert main(["plan", str(profile_file), "--model", str(copy), "--out", str(out)]) == 0
    assert json.loads((out / "plan.json").read_text())["model"] == str(copy)
    # a profile written before the architecture was recorded still plans (by depth alone)
    old = json.loads(profile_file.read_text())
    del old["model_config"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert Profile.from_json(tmp_path / "old.json").model_config is None
    assert main(["plan", str(tmp_path / "old.json"), "--model", str(other), "--out", str(tmp_path / "old")]) == 0


def test_cli_plan_refuses_a_folder_holding_another_profile(profile_file, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    out.mkdir()
    (out / "profile.json").write_text("{}")
    assert main(["plan", str(profile_file), "--out", str(out)]) == 2
    assert "holds another profile.json" in capsys.readouterr().err and not (out / "plan.json").exists()
    assert main(["plan", str(profile_file), "--out", str(profile_file.parent)]) == 0  # next to its own profile


@pytest.mark.parametrize("command, shown", [("profile", "95% intervals: 0 (none) or at least 20 [default: 100]"),
                                            ("plan", "without an adapter [default: 1]"), ("compare-profiles", "--labels")])
def test_cli_help(command, shown, capsys):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert shown in text


def test_cli_profile_of_sft_data_profiles_the_texts_train_profiles(chat_model, tmp_path, capsys):
    """`gelora profile --data FOLDER --prompt-column/--completion-column`: the chat-formatted texts `gelora train
    --task sft` profiles (a folder's split, as train reads it), so a plan can be made before training."""
    import argparse
    import json

    from helpers import tiny_config

    from gelora.commands.profile import load_texts
    from gelora.models import load_tokenizer
    from gelora.train.config import DataOptions
    from gelora.train.tasks.sft import SupervisedFineTuning

    argv = ["profile", chat_model["model"], "--data", chat_model["data"], "--prompt-column", "question",
            "--completion-column", "answer", "--num-samples", "20", "--bootstrap", "0", "--max-length", "48",
            "--no-progress", "--out", str(tmp_path / "p")]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert saved["data"]["format"] == "sft" and saved["data"]["n_texts"] == 20
    tokenizer = load_tokenizer(chat_model["model"])
    args = argparse.Namespace(data=chat_model["data"], split="train", text_columns=None, prompt_column="question",
                              completion_column="answer", max_length=48, task=None)
    texts, _ = load_texts(args, tokenizer)
    options = DataOptions(data=chat_model["data"], prompt_column="question", completion_column="answer")
    task = SupervisedFineTuning(tiny_config(chat_model, tmp_path / "run", task="sft", data_options=options,
                                            max_length=48, max_train_samples=None))
    assert texts == task.load(tokenizer).profile_texts
