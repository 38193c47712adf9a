"""The dataclass-generated command line: types, defaults in help, choices, flags, lists and negative numbers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gelora.cli_args import GeloraArgumentParser, add_arguments, from_args, option
from gelora.options import PlanOptions, ProfileOptions


@dataclass
class Opts:
    model: str = option(help="the model", positional=True)
    rank: int = option(8, "LoRA rank")
    lr: float | None = option(None, "learning rate", default_text="5e-4 for adapters")
    mode: str = option("a", "a mode", choices=("a", "b"))
    targets: list[str] | None = option(None, "module names")
    resume: bool = option(False, "continue")
    progress: bool = option(True, "progress bar")
    hidden: int = option(3, cli=False)


def parse(argv, **kw):
    parser = GeloraArgumentParser(prog="t")
    add_arguments(parser, Opts, **kw)
    return parser, parser.parse_args(argv)


def test_types_defaults_flags_and_lists():
    _, args = parse(["m", "--rank", "4", "--targets", "q, v", "--resume", "--no-progress"])
    opts = from_args(Opts, args)
    assert opts == Opts(model="m", rank=4, lr=None, mode="a", targets=["q", "v"], resume=True, progress=False)
    assert not hasattr(args, "hidden")


def test_negative_numbers_are_values():
    _, args = parse(["m", "--lr", "-1e-3", "--rank", "-2"])
    assert args.lr == -1e-3 and args.rank == -2


def test_help_lists_defaults_and_choices(capsys):
    parser, _ = parse(["m"])
    text = parser.format_help()
    assert "[default: 8]" in text and "{a,b}" in text and "[default: 5e-4 for adapters]" in text
    assert "--no-progress" in text and "turn off progress bar" in text and "--hidden" not in text


def test_choices_are_enforced(capsys):
    with pytest.raises(SystemExit):
        parse(["m", "--mode", "c"])
    assert "invalid choice" in capsys.readouterr().err


def test_override_defaults_and_exclude():
    parser, args = parse(["m"], defaults={"rank": 2}, exclude=("mode",))
    assert args.rank == 2 and not hasattr(args, "mode")


def test_shared_options_validate():
    with pytest.raises(ValueError, match="--budget-rank only applies"):
        PlanOptions(budget_rank=4).validate()
    with pytest.raises(ValueError, match="needs --budget-rank"):
        PlanOptions(rule="budget").validate()
    with pytest.raises(ValueError, match="--bootstrap"):
        ProfileOptions(bootstrap=-5).validate()
    PlanOptions(rule="budget", budget_rank=8).validate()


@pytest.mark.parametrize(
    "argv, line",
    [
        (["bench", "--model", "m", "--out", "o", "--num-samples", "3"],
         "gelora bench: error: unrecognized arguments: --num-samples 3; see gelora bench --help"),
        (["--bogus"], "gelora: error: unrecognized arguments: --bogus; see gelora --help"),
        (["--bogus", "bench", "--model", "m", "--out", "o"],  # before the command: the top level's
         "gelora: error: unrecognized arguments: --bogus; see gelora --help"),
    ],
)
def test_an_unknown_option_is_named_by_its_command(argv, line, capsys, tmp_path, monkeypatch):
    from gelora.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == line + "\n" and not any(tmp_path.iterdir())
