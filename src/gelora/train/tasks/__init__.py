"""Training tasks: one module each, registered here by the name ``--task`` starts with.

``--task glue/rte`` is the ``glue`` task with ``rte`` as its data set. A new task is a ``Task`` subclass in its own
module and one line in ``TASKS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gelora.errors import GeloraError
from gelora.train.tasks.base import Task, TaskData
from gelora.train.tasks.classify import Classify
from gelora.train.tasks.glue import Glue
from gelora.train.tasks.qa import QuestionAnswering
from gelora.train.tasks.sft import SupervisedFineTuning

if TYPE_CHECKING:
    from gelora.train.config import TrainConfig

TASKS: dict[str, type[Task]] = {
    "glue": Glue,
    "classify": Classify,
    "qa": QuestionAnswering,
    "squad": QuestionAnswering,
    "squad_v2": QuestionAnswering,
    "sft": SupervisedFineTuning,
}


def task_kind(task: str) -> str:
    """The registry key of ``--task`` (``glue/rte`` -> ``glue``)."""
    return task.split("/", 1)[0].lower()


def make_task(config: TrainConfig) -> Task:
    """The task object ``config.task`` names (one clear error for an unknown name)."""
    from gelora.data import GLUE_TASKS

    kind = task_kind(config.task)
    if kind in GLUE_TASKS:  # a bare GLUE name (``rte``), as the bench names its tasks
        kind = "glue"
    if kind not in TASKS:
        raise GeloraError(f"unknown task {config.task!r}; choose one of {', '.join(TASKS)} (e.g. glue/rte)")
    return TASKS[kind](config)


__all__ = ["TASKS", "Task", "TaskData", "make_task", "task_kind"]
