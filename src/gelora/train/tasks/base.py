"""What a training task is: its data (tokenised splits, collator, the texts GeLoRA profiles), model head and metrics.

A task is one subclass of ``Task`` in its own module plus one line in ``gelora.train.tasks.TASKS``. The runner calls
``validate`` (before anything is loaded), ``load`` (tokenised rows), ``build_model`` (the pretrained model with the
task's head) and ``evaluate`` (metrics on the evaluation rows); methods ask it for ``peft_task_type`` and
``head_modules``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:
    from gelora.train.config import TrainConfig


@dataclass
class TaskData:
    """Tokenised rows of a task, ready for the loaders.

    Attributes
    ----------
    train, eval : list of dict
        One dict of token lists (and ``labels``) per row; the collator pads them into batches.
    collate : callable
        List of rows -> batch of tensors.
    profile_texts : list of tuple of str
        What GeLoRA profiles: the training texts as the model sees them (one or two strings per row).
    info : dict
        Facts for ``metrics.json`` (e.g. rows truncated to ``max_length``).
    """

    train: list[dict]
    eval: list[dict]
    collate: Callable[[list[dict]], dict[str, torch.Tensor]]
    profile_texts: list[tuple[str, ...]]
    info: dict[str, Any] = field(default_factory=dict)


class Task:
    """One kind of training data and how a model trained on it is scored.

    Class attributes
    ----------------
    auto_model : str
        The ``transformers`` auto class of the model with this task's head.
    peft_task_type : str
        PEFT's ``task_type`` for adapters on that model.
    """

    auto_model: ClassVar[str] = "AutoModelForSequenceClassification"
    peft_task_type: ClassVar[str] = "SEQ_CLS"

    def __init__(self, config: TrainConfig):
        self.config = config

    @property
    def name(self) -> str:
        """The task as recorded in ``metrics.json``."""
        return self.config.task

    @property
    def metric(self) -> str:
        """The metric to select on (the first key of ``evaluate``'s result); larger is better."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise ``GeloraError`` for settings or data this task cannot use; called before any model is loaded."""

    def load(self, tokenizer) -> TaskData:
        raise NotImplementedError

    def build_model(self) -> torch.nn.Module:
        """The pretrained model ``config.model`` with this task's head."""
        raise NotImplementedError

    def head_modules(self, model: torch.nn.Module) -> list[str]:
        """Modules every adapter method trains in full (PEFT ``modules_to_save``): none unless a task adds a head."""
        return []

    def evaluate(self, model: torch.nn.Module, loader, accelerator) -> dict[str, float]:
        """Metrics on the evaluation rows (``loader`` is prepared by ``accelerator``), gathered over processes."""
        raise NotImplementedError
