"""User-facing errors: one clear message that names the problem and the fix."""


class GeloraError(ValueError):
    """Bad input or configuration. The CLI prints the message alone, without a traceback."""
