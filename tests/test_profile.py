import json
import re

import pytest
import torch
from tiny_models import make_texts, tiny_model, tokenizer  # noqa: F401  (fixture)

from gelora.cli import main
from gelora.errors import GeloraError
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
    profile = profile_model(str(model_dir), None, make_texts(30), pooling="mean", bootstrap=0, progress=False)
    profile.to_json(tmp_path / "profile.json")
    assert main(["plan", str(tmp_path / "profile.json"), "--rule", "budget", "--budget-rank", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--budget-rank >= 1" in err and "Traceback" not in err


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
    fails([*base, "--data", str(holes), "--out", str(tmp_path / "o")], r"column 'premise' holds a NoneType .* row 3")
    fails([*base, "--data", str(data_file), "--out", str(tmp_path / "o"), "--device", "tpu9"], "unknown device 'tpu9'")
    if not torch.cuda.is_available():
        fails([*base, "--data", str(data_file), "--out", str(tmp_path / "o"), "--device", "cuda"], "needs a CUDA GPU")
    fails([*base, "--data", str(data_file), "--out", str(tmp_path / "o"), "--num-samples", "-5"], "at least 1")
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    fails([*base, "--data", str(data_file), "--out", str(blocker / "sub")], "check the paths")
    assert blocker.read_text() == "mine"
    no_type = tmp_path / "no-type"
    no_type.mkdir()
    (no_type / "config.json").write_text("{}")
    fails(["profile", str(no_type), "--data", str(data_file), "--text-columns", "premise", "--out", str(tmp_path / "o")],
          "could not load model")
