"""What gelora says, and what it lets the libraries under it say.

The Python API leaves logging and warnings as the user configured them; only the ``gelora`` command line calls
:func:`configure_cli_output`, so a terminal shows gelora's progress bar, results and own warnings, and not the load
reports, deprecation notices and progress bars of Transformers, Datasets, Accelerate, PEFT and the Hub client
(``gelora --verbose`` keeps them).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

LIBRARIES = ("transformers", "datasets", "accelerate", "peft", "huggingface_hub")

# Read by the libraries when they are imported (after this runs, in the CLI) and inherited by the processes they
# start; a value the user set is kept.
_QUIET_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


class GeloraWarning(UserWarning):
    """Something the user should know that is not an error (the CLI prints it on one line)."""


_warned: set[str] = set()


def warn_once(message: str, stacklevel: int = 2) -> None:
    """Issue ``message`` as a :class:`GeloraWarning` the first time this process asks for it, never again.

    Parameters
    ----------
    message
        The warning in gelora's words: what happened and whether it is expected.
    stacklevel
        As for ``warnings.warn``, counted from the caller of this function.
    """
    if message in _warned:
        return
    _warned.add(message)
    warnings.warn(message, GeloraWarning, stacklevel=stacklevel + 1)


def _one_line(message, category, filename, lineno, line=None) -> str:
    if issubclass(category, GeloraWarning):
        return f"gelora: warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


_python_format = warnings.formatwarning


def configure_cli_output(verbose: bool = False) -> None:
    """Set up a terminal for the ``gelora`` command: gelora's warnings on one line, the libraries quiet.

    Unless ``verbose``, the logging, progress bars and warnings of :data:`LIBRARIES` are silenced for the rest of
    this process (errors are still logged; warnings raised by gelora or by the user's own code still show). Meant
    for the command line only: it changes process-wide state (environment, logger levels, warning filters).
    """
    warnings.formatwarning = _one_line
    if verbose:
        return
    for name, value in _QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name in LIBRARIES:  # libraries imported before this call have read the environment already
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    warnings.filterwarnings("ignore", module=rf"({'|'.join(LIBRARIES)})(\.|$)")
