"""The ``gelora`` command line. Each subcommand lives in ``gelora.commands.<name>`` with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from gelora import __version__
from gelora.cli_args import GeloraArgumentParser
from gelora.errors import GeloraError
from gelora.logs import configure_cli_output

VERBOSE_HELP = "show the logging, warnings and progress bars of Transformers, Datasets, Accelerate, PEFT and the Hub"

# (subcommand, module under gelora.commands)
COMMANDS = [
    ("id", "id_cmd"),
    ("profile", "profile"),
    ("plan", "plan"),
    ("compare-profiles", "compare_profiles"),
    ("train", "train"),
    ("bench", "bench"),
    ("evaluate", "evaluate"),
    ("predict", "predict"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = GeloraArgumentParser(
        prog="gelora",
        description="LoRA ranks from the geometry of the model (GeLoRA) and rank-adaptive GeoLoRA.",
    )
    parser.add_argument("--version", action="version", version=f"gelora {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS:
        mod = importlib.import_module(f"gelora.commands.{module}")
        p = mod.register(sub, name)
        p.set_defaults(_run=mod.run)
        # also accepted after COMMAND; SUPPRESS keeps the top-level value when it is not repeated there
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    parser.commands = sub.choices  # {name: its parser}, for errors in the command's own words
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named by the parser of the part they stand in (a command's), so the line points to its --help
            given = list(sys.argv[1:] if argv is None else argv)
            after_command = args.command in given and given.index(args.command) < given.index(unknown[0])
            owner = parser.commands[args.command] if after_command else parser
            owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as e:  # --help, --version, or one line on a bad option: return its status, like any error
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    configure_cli_output(args.verbose)
    try:
        return args._run(args) or 0
    except GeloraError as e:
        print(f"gelora {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no: an output path that is a file, no permission, a full disk
        print(f"gelora {args.command}: error: {e}; check the paths given and their permissions", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gelora {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
