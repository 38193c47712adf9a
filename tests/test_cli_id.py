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
    assert main(["id", str(path), "--json", "--bootstrap", "10"]) == 0
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
