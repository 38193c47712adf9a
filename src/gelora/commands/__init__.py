"""CLI subcommands: each module has ``register(subparsers, name) -> parser`` and ``run(args) -> int``."""
