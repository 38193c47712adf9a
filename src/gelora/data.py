"""Task data: GLUE tasks from a local folder or the Hub, and user files (jsonl / csv)."""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

from gelora.errors import GeloraError

DATA_DIR_ENV = "GELORA_DATA_DIR"


@dataclass(frozen=True)
class TaskSpec:
    """What a task needs: its text columns, label kind and metrics (first metric = the one to select on)."""

    name: str
    text_columns: tuple[str, ...]
    num_labels: int  # 1 means regression
    metrics: tuple[str, ...]
    eval_split: str = "validation"

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


GLUE_TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("cola", ("sentence",), 2, ("matthews_correlation",)),
        TaskSpec("sst2", ("sentence",), 2, ("accuracy",)),
        TaskSpec("mrpc", ("sentence1", "sentence2"), 2, ("accuracy", "f1")),
        TaskSpec("stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman")),
        TaskSpec("qnli", ("question", "sentence"), 2, ("accuracy",)),
        TaskSpec("rte", ("sentence1", "sentence2"), 2, ("accuracy",)),
        TaskSpec("mnli", ("premise", "hypothesis"), 3, ("accuracy",), eval_split="validation_matched"),
        TaskSpec("qqp", ("question1", "question2"), 2, ("accuracy", "f1")),
    ]
}


def task_spec(task: str) -> TaskSpec:
    """Spec of ``glue/<name>`` (or bare ``<name>``)."""
    name = task.removeprefix("glue/").lower()
    if name not in GLUE_TASKS:
        raise GeloraError(f"unknown task {task!r}; choose one of {', '.join('glue/' + t for t in GLUE_TASKS)}")
    return GLUE_TASKS[name]


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The local GLUE folder: ``explicit``, else ``$GELORA_DATA_DIR``, else None (use the Hub)."""
    value = explicit or os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise GeloraError(f"data folder {str(path)!r} does not exist; fix --data-dir or ${DATA_DIR_ENV}")
    return path


def load_task(task: str, folder: str | os.PathLike | None = None):
    """Load a GLUE task as a ``datasets.DatasetDict`` holding ``train`` and its evaluation split.

    Parameters
    ----------
    task : str
        ``glue/<name>`` or ``<name>``, any case: cola, sst2, mrpc, stsb, qnli, rte, mnli, qqp.
    folder : str or os.PathLike, optional
        Local GLUE folder holding ``<name>/train.jsonl`` and ``<name>/<evaluation split>.jsonl`` (``validation``;
        ``validation_matched`` for mnli); ``~`` is expanded. Default: ``$GELORA_DATA_DIR``, and without it the
        ``nyu-mll/glue`` dataset from the Hub (or the local ``datasets`` cache when the Hub is unreachable).

    Returns
    -------
    datasets.DatasetDict
        From a folder: exactly ``train`` and the evaluation split. From the Hub: every split the Hub has (``test``
        too, unlabelled).

    Raises
    ------
    GeloraError
        An unknown task; a folder that does not exist or lacks one of the two files; a file ``datasets`` cannot
        read as JSON lines; training rows without the task's text columns (see :data:`GLUE_TASKS`); or a Hub load
        that fails.
    """
    spec = task_spec(task)
    root = data_dir(folder)
    if root is None:
        return _from_hub(f"glue/{spec.name}", f"pass --data-dir or set ${DATA_DIR_ENV} to a folder with "
                         f"{spec.name}/train.jsonl", "nyu-mll/glue", spec.name)
    ds = _read_files("json", {k: str(v) for k, v in glue_files(task, root).items()})
    check_columns(ds["train"], spec.text_columns)
    return ds


def glue_files(task: str, root: Path) -> dict[str, Path]:
    """The local files of a GLUE task in the folder ``root``: train and its evaluation split (missing: an error)."""
    spec = task_spec(task)
    files = {split: root / spec.name / f"{split}.jsonl" for split in ("train", spec.eval_split)}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise GeloraError(f"missing data file(s): {', '.join(missing)}; fix --data-dir or ${DATA_DIR_ENV}")
    return files


def _read_files(kind: str, files: dict[str, str]):
    """``datasets.load_dataset(kind, data_files=files)`` with one clear error for a file it cannot parse."""
    import datasets
    from datasets.utils import logging as datasets_logging

    # datasets logs its own error (and, with a stale handler, a traceback) before raising: ours is the one line
    verbosity = datasets_logging.get_verbosity()
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)
    try:
        return datasets.load_dataset(kind, data_files=files)
    except Exception as e:  # pyarrow / pandas / datasets raise many kinds for a malformed file
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise GeloraError(
            f"could not read {', '.join(files.values())} as {kind} ({reason}); "
            "fix the file: one JSON object per line (jsonl) or a CSV with a header row"
        ) from None
    finally:
        datasets_logging.set_verbosity(verbosity)


FILE_KINDS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load_split(source: str | os.PathLike, split: str = "train", config: str | None = None):
    """One split of a user's data as a ``datasets.Dataset``.

    ``source`` is a ``.jsonl``/``.json``/``.csv``/``.parquet`` file (one split: ``split`` must be ``"train"``), a
    folder holding ``<split>.<ext>`` (e.g. ``gsm8k/test.jsonl``), or a Hub dataset id (``config`` names its
    configuration). Every failure is one ``GeloraError``.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [path / f"{split}{ext}" for ext in FILE_KINDS if (path / f"{split}{ext}").is_file()]
        if not found:
            raise GeloraError(f"folder {text!r} has no {split}.jsonl/.json/.csv/.parquet; fix the path or split")
        return _read_file(found[0])
    if path.is_file():
        if split != "train":
            raise GeloraError(
                f"data file {text!r} holds one split, not {split!r}; give a folder with {split}.jsonl, "
                "or a separate file for evaluation"
            )
        return _read_file(path)
    if path.suffix in FILE_KINDS or text.startswith((".", "/", "~")):
        raise GeloraError(f"data file {text!r} does not exist; fix the path")
    return _load_hub(text, config, split)


def _read_file(path: Path):
    if path.suffix not in FILE_KINDS:
        raise GeloraError(f"unsupported data file {path.name!r}; use .jsonl, .json, .csv or .parquet")
    if path.stat().st_size == 0:
        raise GeloraError(f"data file {str(path)!r} is empty")
    dataset = _read_files(FILE_KINDS[path.suffix], {"train": str(path)})["train"]
    if len(dataset) == 0:
        raise GeloraError(f"data file {str(path)!r} has no rows")
    return dataset


def _load_hub(hub_id: str, config: str | None, split: str):
    what = f"{hub_id!r} ({'config ' + config + ', ' if config else ''}split {split})"
    return _from_hub(what, "check the dataset id, its configuration and the split, or give a local "
                     ".jsonl/.json/.csv/.parquet file", hub_id, config, split=split)


@contextmanager
def hub_lookups():
    """A context for ``datasets`` calls that reach the Hub; yields whether the Hub is unreachable.

    Unreachable, datasets retries each request for ~25 s before failing; in offline mode (for these calls only) it
    answers from its local cache, or fails, at once.
    """
    import datasets
    from huggingface_hub import constants

    from gelora.models import hub_reachable

    offline = not hub_reachable()
    with patch.object(datasets.config, "HF_HUB_OFFLINE", True) if offline else nullcontext(), \
            patch.object(constants, "HF_HUB_OFFLINE", True) if offline else nullcontext():
        yield offline


def _from_hub(what: str, fix: str, *args, **kwargs):
    """``datasets.load_dataset(*args, **kwargs)``, every failure one ``GeloraError`` about ``what`` ending in ``fix``."""
    import datasets
    from huggingface_hub import constants

    with hub_lookups() as offline:
        try:
            return datasets.load_dataset(*args, **kwargs)
        except Exception as e:  # the Hub and datasets raise many kinds; all mean the same thing to a user
            reason = f"the Hub ({constants.ENDPOINT}) cannot be reached and the local datasets cache does not hold " \
                "it" if offline else (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise GeloraError(f"could not load {what} from the Hub ({reason}); {fix}") from None


def load_file(path: str | os.PathLike, text_columns: list[str] | tuple[str, ...]):
    """Load a user's jsonl / json / csv / parquet file as a ``DatasetDict`` with one ``train`` split."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise GeloraError(f"data file {str(path)!r} does not exist")
    dataset = _read_file(path)
    check_columns(dataset, tuple(text_columns))
    return datasets.DatasetDict({"train": dataset})


def check_columns(dataset, columns: tuple[str, ...], where: str = "the data") -> None:
    """Raise one ``GeloraError`` naming the ``columns`` that ``dataset`` (a ``Dataset``, or a dict of columns) lacks."""
    names = list(getattr(dataset, "column_names", dataset))
    missing = [c for c in columns if c not in names]
    if missing:
        raise GeloraError(f"column(s) {', '.join(missing)} not in {where}; available: {', '.join(names)}")


def text_pairs(dataset, text_columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Rows as tuples of texts, ready for a tokenizer (and for :func:`gelora.profile.profile_model`).

    Parameters
    ----------
    dataset : datasets.Dataset
        Or anything that returns a column's values as a sequence for ``dataset[name]`` (e.g. a dict of lists).
    text_columns : tuple of str
        The columns to read, in order: one (single texts) or two (sentence pairs).

    Returns
    -------
    list of tuple of str
        One tuple per row, in row order, with one text per column.

    Raises
    ------
    GeloraError
        A missing column (:func:`check_columns`), or a cell that is not a string (an empty cell or null, or a
        number), naming the column and the row.

    Examples
    --------
    >>> text_pairs({"premise": ["A dog runs.", "It rains."], "hypothesis": ["An animal moves.", "It is dry."]},
    ...            ("premise", "hypothesis"))
    [('A dog runs.', 'An animal moves.'), ('It rains.', 'It is dry.')]
    """
    check_columns(dataset, tuple(text_columns))
    columns = [dataset[c] for c in text_columns]
    for name, values in zip(text_columns, columns):
        bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
        if bad is not None:
            value = values[bad]
            what = "nothing (an empty cell or null)" if value is None else f"{type(value).__name__} {value!r}, not text"
            raise GeloraError(f"text column {name!r} holds {what} in row {bad}; fill or drop such rows, or pick text "
                              "columns with --text-columns")
    return list(zip(*columns))
