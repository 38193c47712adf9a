"""User-facing errors: one clear message that names the problem and the fix."""


class GeloraError(ValueError):
    """Bad input or configuration. The CLI prints the message alone, without a traceback."""


def flag(name: str) -> str:
    """The command-line flag of an option's field name: ``max_length`` -> ``--max-length``."""
    return "--" + name.replace("_", "-")


def ignored_options(names: list[str], target: str) -> GeloraError:
    """The error for options (dataclass field names) that ``target`` (e.g. ``--task rte``) would silently ignore."""
    flags = ", ".join(map(flag, names))
    one = len(names) == 1
    return GeloraError(f"{flags} {'does' if one else 'do'} not apply to {target}; drop {'it' if one else 'them'}")
