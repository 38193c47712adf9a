"""``gelora bench``'s check of every task's data before the bench folder is made and before any run starts.

Each task is checked by the runner's own code: its ``validate`` (settings, model, GLUE files), its ``load_splits``
(files, folders, splits, Hub ids, the held-out evaluation rows) and the column checks its ``load`` applies, on the
first rows of each split only: a bad row further down still fails its runs, which the bench records and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gelora.bench.settings import BenchSettings
from gelora.errors import GeloraError

if TYPE_CHECKING:
    from datasets import Dataset

    from gelora.train.tasks import Task

RowCheck = Callable[["Task", "Dataset", str], None]

ROWS_CHECKED = 16  # enough to meet a wrong schema, few enough to check a large file at no cost


def check_data(settings: BenchSettings) -> None:
    """Raise one ``GeloraError`` naming the task when a task's settings or data cannot be used."""
    from gelora.data import load_split
    from gelora.train.tasks import make_task
    from gelora.train.tasks.base import first_rows

    for bench_task in settings.bench_tasks():
        task = make_task(settings.run_config(bench_task, method="lora", out=""))
        try:
            task.validate()
            check_rows = _row_checks().get(type(task))
            if check_rows is None:  # GLUE: validate found its files, and their columns are GLUE's
                continue
            # The training rows first, as read: holding out evaluation rows may need a column (QA: the contexts).
            options = task.config.data_options
            with _local_copy_hint(bench_task):
                train = load_split(options.data, options.train_split, options.data_config)
            check_rows(task, first_rows(train, ROWS_CHECKED), "training")
            with _local_copy_hint(bench_task):
                evaluation = task.load_splits()[1]
            check_rows(task, first_rows(evaluation, ROWS_CHECKED), "evaluation")
        except GeloraError as e:
            raise GeloraError(f"--tasks {bench_task.label}: {e}") from None


@contextmanager
def _local_copy_hint(bench_task):
    """Reading a known data set (``sft:gsm8k``) from the Hub: a failure also says where a local copy is read from."""
    from gelora.bench.tasks import PRESETS
    from gelora.data import DATA_DIR_ENV

    try:
        yield
    except GeloraError as e:
        preset = bench_task.preset
        if preset is None or bench_task.data.data != PRESETS[preset]["hub"]:
            raise
        raise GeloraError(f"{e}; a local copy is read instead from a folder {preset}/ beside the GLUE folder of "
                          f"--data-dir (or ${DATA_DIR_ENV})") from None


def _row_checks() -> dict[type[Task], RowCheck]:
    """The column checks of the runner's tasks, by task class (what each one's ``load`` checks first)."""
    from gelora.train.tasks.classify import Classify
    from gelora.train.tasks.qa import QuestionAnswering
    from gelora.train.tasks.sft import SupervisedFineTuning

    return {Classify: Classify.check_rows, SupervisedFineTuning: _sft_columns, QuestionAnswering: _qa_columns}


def _sft_columns(task: Task, rows: Dataset, split: str) -> None:
    from gelora.train.tasks.sft_data import sft_columns

    options = task.config.data_options
    sft_columns(rows, options.prompt_column, options.completion_column, where=f"the {split} data")


def _qa_columns(task: Task, rows: Dataset, split: str) -> None:
    from gelora.train.tasks.qa_features import check_answers

    check_answers(rows)
    task.check_version(rows, split)
