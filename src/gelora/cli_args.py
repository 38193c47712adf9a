"""A command line generated from dataclasses: each field is one option, its help and choices in field metadata.

In the spirit of ``transformers.HfArgumentParser``, with gelora's conventions: ``--kebab-case`` names, the
default shown in every help line, ``list[str]`` as one comma-separated value, booleans as flags (``--x`` for a
False default, ``--no-x`` for a True one), and negative numbers accepted as values (``--lr -1e-3`` reaches the
validation, which rejects it by meaning, instead of being taken for an option).

Example
-------
>>> @dataclass
... class Opts:
...     rank: int = option(8, "LoRA rank")
>>> parser = GeloraArgumentParser(); add_arguments(parser, Opts)
>>> from_args(Opts, parser.parse_args(["--rank", "4"])).rank
4
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from gelora.errors import flag

MISSING = dataclasses.MISSING
# Numbers argparse should read as values, scientific notation included (its own pattern misses ``-1e-3``).
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class GeloraArgumentParser(argparse.ArgumentParser):
    """``ArgumentParser`` that takes ``-1e-3`` (and any negative number) as a value, in every subparser."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> typing.NoReturn:
        """One line that names the problem (argparse's default repeats the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None,
    positional: bool = False,
    metavar: str | None = None,
    cli: bool = True,
    default_text: str | None = None,
    parse_as: Callable[[str], Any] | None = None,
) -> Any:
    """A dataclass field that is also a command-line option.

    Parameters
    ----------
    default : optional
        The field's default; without one the option is required (or positional).
    help : str
        One line for ``--help``.
    choices : sequence or callable, optional
        The allowed values, listed in ``--help`` and checked by the parser; a callable is asked when the parser is
        built (for registries that may grow, such as the training methods).
    positional : bool
        An argument without ``--`` (e.g. ``MODEL``).
    cli : bool
        False for settings the library sets but users do not (no option is generated).
    default_text : str, optional
        How ``--help`` describes the default when the value itself is not telling (e.g. "5e-4 for adapters").
    parse_as : callable, optional
        How to read the option's text instead of the annotation's type (e.g. ``str``, leaving the conversion to the
        dataclass, whose errors then read as gelora's own).
    """
    metadata = {"help": help, "choices": choices, "positional": positional,
                "metavar": metavar, "cli": cli, "default_text": default_text,
                "parse_as": parse_as}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of an annotation such as ``int``, ``float | None`` or ``list[str] | None``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return annotation, False


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def cli_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are command-line options."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True) and f.init]


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    defaults: dict[str, Any] | None = None,
    exclude: Sequence[str] = (),
) -> None:
    """Add one option per field of the dataclass ``cls`` to ``parser`` (``defaults`` overrides field defaults)."""
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    for f in cli_fields(cls):
        if f.name in exclude:
            continue
        meta = f.metadata
        kind, optional = _base_type(hints[f.name])
        default = defaults.get(f.name, _default_of(f))
        option_flag = flag(f.name)
        help_text = meta.get("help", "").replace("%", "%%")  # argparse formats help with %
        shown = meta.get("default_text") or (None if default in (MISSING, None) else default)
        if kind is bool:
            if default:
                parser.add_argument(option_flag.replace("--", "--no-", 1), dest=f.name, action="store_false",
                                    help=f"turn off {help_text} [default: on]")
            else:
                parser.add_argument(option_flag, dest=f.name, action="store_true", help=f"{help_text} [default: off]")
            continue
        kwargs: dict[str, Any] = {"help": help_text}
        if meta.get("parse_as"):
            kwargs["type"] = meta["parse_as"]
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if isinstance(shown, tuple):
                shown = ",".join(map(str, shown))
        elif typing.get_origin(kind) is list:
            kwargs["type"] = _comma_list
            kwargs["metavar"] = meta.get("metavar") or "A,B,..."
            if isinstance(shown, list):
                shown = ",".join(map(str, shown))
        else:
            kwargs["type"] = kind
            kwargs["metavar"] = meta.get("metavar") or {int: "N", float: "X"}.get(kind)
        choices = meta.get("choices")
        if choices:
            kwargs["choices"] = tuple(choices() if callable(choices) else choices)
        if shown is not None:
            kwargs["help"] += f" [default: {shown}]"
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs)
        elif default is MISSING and not optional:
            parser.add_argument(option_flag, dest=f.name, required=True, **kwargs)
        else:
            parser.add_argument(option_flag, dest=f.name, default=default, **kwargs)


def from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """An instance of ``cls`` from the parsed options that belong to it (fields without an option keep defaults)."""
    values = {f.name: getattr(args, f.name) for f in cli_fields(cls) if hasattr(args, f.name)}
    return cls(**(values | overrides))
