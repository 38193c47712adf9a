import json
import re

import numpy as np
import pytest
import torch

from gelora import twonn
from gelora.cli import COMMANDS, build_parser, main


@pytest.fixture
def points():
    r = np.random.default_rng(0)
    return r.normal(size=(800, 3)) @ r.normal(size=(3, 20))


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".csv"])
def test_id_reads_every_format(tmp_path, points, suffix, capsys):
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, points)
    elif suffix == ".pt":
        torch.save(torch.from_numpy(points), path)
    else:
        np.savetxt(path, points, delimiter=",", header=",".join(f"f{i}" for i in range(20)), comments="")
    assert main(["id", str(path), "--json", "--bootstrap", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dimension"] == pytest.approx(twonn(points).dimension, rel=1e-9)
    assert out["ci_low"] <= out["ci_high"]


@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist"), ("a,b\nx,y\n", "not a numeric CSV"), ("1,2\n3,4\n", "at least 3 points")],
)
def test_id_bad_files_give_one_line_errors(tmp_path, content, message, capsys):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    assert main(["id", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def help_text(capsys, *argv: str) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_help_lists_every_subcommand(capsys):
    listed = re.findall(r"^    (\S+)", help_text(capsys), re.M)  # each with its one-line help
    assert listed == [name for name, _ in COMMANDS]


def test_id_help_lists_every_option_with_its_default(capsys):
    text = help_text(capsys, "id")
    options = [a for a in build_parser().parse_args(["id", "x.npy"]).__dict__ if not a.startswith("_")]
    for dest in set(options) - {"command", "file", "verbose"}:
        flag = "--" + dest.replace("_", "-")
        # the option's entry: from its flag to the next option's flag
        entry = re.search(rf"^  {flag}\b(.*?)(?=^  -|\Z)", text, re.M | re.S)
        assert entry, f"{flag} missing from the help"
        default = build_parser().parse_args(["id", "x.npy"]).__dict__[dest]
        if default not in (None, False):
            assert str(default) in " ".join(entry.group(1).split()), f"{flag}: default {default} not shown"


def test_train_help_lists_every_setting_with_its_default(capsys):
    import dataclasses

    from gelora.cli_args import cli_fields
    from gelora.options import PlanOptions, ProfileOptions
    from gelora.train.config import TrainConfig

    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # help lines wrap
    for cls in (TrainConfig, ProfileOptions, PlanOptions):
        for f in cli_fields(cls):
            flag = f.name.replace("_", "-")
            if f.metadata.get("positional"):
                continue
            assert f"--{flag}" in out or f"--no-{flag}" in out, f.name
            default = f.default if f.default is not dataclasses.MISSING else None
            if default not in (None, False, True) and not f.metadata.get("default_text"):
                assert f"[default: {default}]" in out, f.name


def run_id(capsys, *args) -> tuple[int, str, str]:
    code = main(["id", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda p: np.save(p / "x.npy", np.ones((20, 2))), ["--seed", "-1"], "seed must be a non-negative integer"),
        (lambda p: np.save(p / "x.npy", np.ones((20, 2))), ["--bootstrap", "-5"], "or at least 20 (fewer make the interval's ends"),
        (lambda p: np.save(p / "x.npy", np.ones((20, 2))), ["--bootstrap", "1"], "), got 1"),
        (lambda p: (p / "x.pt").write_bytes(b"garbage"), [], "not a readable torch.save file"),
        (lambda p: (p / "x.npy").write_bytes(b"garbage"), [], "not a readable .npy file"),
        (lambda p: np.save(p / "x.npy", np.ones((4, 3, 2))), [],
         "expected a 2-D array of points x features, got shape (4, 3, 2)"),
        (lambda p: (p / "x.npy").mkdir(), [], "is a folder"),
        (lambda p: (p / "x.txt").write_text("1,2\n"), [], "unsupported file type '.txt'"),
    ],
)
def test_id_bad_input_is_one_line_exit_2(tmp_path, capsys, make, extra, message):
    make(tmp_path)
    (path,) = tmp_path.iterdir()
    code, out, err = run_id(capsys, path, *extra)
    assert code == 2 and out == ""
    assert err.startswith("gelora id: error: ") and err.count("\n") == 1 and message in err
    assert "reshape" not in err and "101" not in err


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_id_json_at_extreme_scales_is_strict_json_with_the_unscaled_estimate(tmp_path, capsys, points, scale):
    np.save(tmp_path / "x.npy", points * scale)
    code, out, _ = run_id(capsys, tmp_path / "x.npy", "--json", "--bootstrap", "0")

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    result = json.loads(out, parse_constant=refuse)
    assert code == 0 and result["ci_low"] is None
    assert result["dimension"] == pytest.approx(twonn(points).dimension, rel=1e-9)


def test_json_safe_turns_non_finite_floats_into_null():
    from gelora.commands.id_cmd import _json_safe

    value = {"a": float("nan"), "b": {"c": float("inf"), "d": 1.5}, "e": None, "f": "x"}
    assert _json_safe(value) == {"a": None, "b": {"c": None, "d": 1.5}, "e": None, "f": "x"}
