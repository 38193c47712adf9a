"""The ``gelora`` command line. Each subcommand lives in ``gelora.commands.<name>`` with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from gelora import __version__
from gelora.cli_args import GeloraArgumentParser
from gelora.errors import GeloraError

# (subcommand, module under gelora.commands)
COMMANDS = [
    ("id", "id_cmd"),
    ("profile", "profile"),
    ("plan", "plan"),
    ("compare-profiles", "compare_profiles"),
    ("train", "train"),
    ("bench", "bench"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = GeloraArgumentParser(
        prog="gelora",
        description="LoRA ranks from the geometry of the model (GeLoRA) and rank-adaptive GeoLoRA.",
    )
    parser.add_argument("--version", action="version", version=f"gelora {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS:
        mod = importlib.import_module(f"gelora.commands.{module}")
        p = mod.register(sub, name)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
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
