"""What a training task is: its data (tokenised splits, collator, the texts GeLoRA profiles), model head and metrics.

A task is one subclass of ``Task`` in its own module plus one line in ``gelora.train.tasks.TASKS``. The runner calls
``validate`` (before anything is loaded), ``load`` (tokenised rows), ``build_model`` (the pretrained model with the
task's head) and ``evaluate`` (metrics on the evaluation rows); methods ask it for ``peft_task_type`` and
``head_modules``. A finished run is used through ``restore`` (what training learned from its data), ``load_eval``
(new evaluation rows) and ``predict`` (outputs for rows without labels); see ``gelora.train.trained``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from gelora.errors import GeloraError, ignored_options

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
    eval_collate : callable, optional
        The evaluation rows' collator when it differs (e.g. packed training blocks, padded evaluation rows).
    """

    train: list[dict]
    eval: list[dict]
    collate: Callable[[list[dict]], dict[str, torch.Tensor]]
    profile_texts: list[tuple[str, ...]]
    info: dict[str, Any] = field(default_factory=dict)
    eval_collate: Callable[[list[dict]], dict[str, torch.Tensor]] | None = None


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
    uses_data_options: ClassVar[frozenset[str]] = frozenset()  # the ``DataOptions`` fields this task reads
    greater_is_better: ClassVar[bool] = True  # of ``metric``
    outputs: ClassVar[tuple[str, ...]] = ()  # files the task writes into ``--out`` (``--overwrite`` removes them)

    def __init__(self, config: TrainConfig):
        self.config = config

    @property
    def name(self) -> str:
        """The task as recorded in ``metrics.json``."""
        return self.config.task

    @property
    def metric(self) -> str:
        """The metric to select the best evaluation on (a key of ``evaluate``'s result; see ``greater_is_better``)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise ``GeloraError`` for settings or data this task cannot use; called before any model is loaded.

        Subclasses extend it (calling ``super().validate()``); here: data options this task would ignore.
        """
        options, config = self.config.data_options, self.config
        ignored = sorted(options.given() - self.uses_data_options)
        if ignored:
            raise ignored_options(ignored, f"--task {self.name}")
        if "eval_fraction" in options.given() and (options.eval_data or options.eval_split):
            raise GeloraError("--eval-fraction holds out training rows only without --eval-data / --eval-split; "
                              "drop one of them")
        if not 0 < options.eval_fraction < 1:
            raise GeloraError(f"--eval-fraction must be in (0, 1) (got {options.eval_fraction:g})")
        self._check_local_data(options)
        if config.data_dir is not None and not self.name.startswith("glue/"):
            raise GeloraError(f"--data-dir is the GLUE folder; --task {self.name} reads --data instead: drop it")
        self._check_max_length()

    @staticmethod
    def _check_local_data(options) -> None:
        """Options that local ``--data`` would silently ignore: a Hub configuration, a held-out fraction beside the
        folder's own evaluation split."""
        from pathlib import Path

        def local(source: str | None) -> bool:
            return source is not None and Path(source).expanduser().exists()

        if not local(options.data):
            return  # a Hub dataset id (or no data: the task says so)
        if options.data_config is not None and (options.eval_data is None or local(options.eval_data)):
            raise GeloraError(f"--data-config names a configuration of a Hub dataset, and the data "
                              f"({', '.join(filter(None, (options.data, options.eval_data)))}) are local; drop it")
        # (validate refused --eval-fraction beside --eval-data / --eval-split already)
        held_out = "eval_fraction" in options.given() and _held_out_split(options.data)
        if held_out:
            raise GeloraError(f"--data {options.data!r} has a {held_out} split, which the run evaluates on, so "
                              "--eval-fraction would be ignored; drop it, or give its training file as --data to hold "
                              "out training rows")

    def _check_max_length(self) -> None:
        """A ``--max-length`` beyond the model's positions would fail in the first forward pass: refuse it now."""
        from gelora.models import load_config

        positions = getattr(load_config(self.config.model), "max_position_embeddings", None)
        if positions is not None and self.config.max_length > positions:
            raise GeloraError(f"--max-length {self.config.max_length} is beyond the {positions} positions of "
                              f"{self.config.model!r}; use --max-length {positions} or less")

    def load_splits(self):
        """The training and evaluation rows (``datasets.Dataset``) of ``--data``, the first ``max_*_samples`` each.

        Evaluation rows come from ``--eval-data``, else ``--eval-split`` of ``--data``, else its validation (or
        test) split when it is a folder that has one, else a seeded ``--eval-fraction`` of the training rows.
        """
        from gelora.data import load_split

        options, config = self.config.data_options, self.config
        if options.data is None:
            raise GeloraError(f"--task {self.name} needs --data (a .jsonl/.json/.csv/.parquet file, a folder, or a "
                              "Hub dataset id)")
        train = load_split(options.data, options.train_split, options.data_config)
        if options.eval_data is not None:
            evaluation = load_split(options.eval_data, options.eval_split or "train", options.data_config)
        elif options.eval_split is not None or (split := _held_out_split(options.data, options.data_config)):
            evaluation = load_split(options.data, options.eval_split or split, options.data_config)
        else:
            train, evaluation = self.hold_out(train, options.eval_fraction)
        return first_rows(train, config.max_train_samples), first_rows(evaluation, config.max_eval_samples)

    def hold_out(self, rows, fraction: float):
        """``(train, eval)``: a seeded ``fraction`` of ``rows`` held out for evaluation.

        The split seed is fixed, so runs of every ``--seed`` are scored on the same held-out rows.
        """
        try:
            parts = rows.train_test_split(test_size=fraction, seed=0)
        except ValueError:  # too few rows for the fraction: one of the parts would be empty
            raise GeloraError(f"holding out {fraction:g} of {len(rows)} row(s) for evaluation leaves no training or no "
                              "evaluation row; give more rows, or separate evaluation data") from None
        return parts["train"], parts["test"]

    def load(self, tokenizer) -> TaskData:
        raise NotImplementedError

    def build_model(self) -> torch.nn.Module:
        """The pretrained model ``config.model`` with this task's head."""
        raise NotImplementedError

    def head_modules(self, model: torch.nn.Module) -> list[str]:
        """Modules every adapter method trains in full (PEFT ``modules_to_save``): none unless a task adds a head."""
        return []

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], accelerator) -> torch.Tensor:
        """The training loss of one batch (what the model computes from the batch's labels)."""
        return model(**batch).loss

    def evaluate(self, model: torch.nn.Module, loader, accelerator) -> dict[str, float]:
        """Metrics on the evaluation rows (``loader`` is prepared by ``accelerator``), gathered over processes."""
        raise NotImplementedError

    def restore(self, metrics: dict[str, Any], tokenizer) -> None:
        """Set what training learned from its data (label names, SQuAD version), from the finished run's
        ``metrics.json``, so that new data is read the way the run read its own; called before ``build_model``."""
        self.tokenizer = tokenizer

    def load_eval(self, tokenizer, dataset) -> TaskData:
        """``dataset`` (a ``datasets.Dataset`` with labels or answers) as evaluation rows, checked and tokenised
        as ``load`` does; no training rows."""
        raise NotImplementedError

    def check_inputs(self, dataset) -> None:
        """Raise ``GeloraError`` when ``dataset`` lacks what ``predict`` reads (checked before a model is loaded)."""
        raise NotImplementedError

    def predict(self, model: torch.nn.Module, tokenizer, dataset, batch_size: int) -> list[dict[str, Any]]:
        """One output per row of ``dataset``, in order (labels and answers not needed); ``model`` is on its device."""
        raise NotImplementedError


def _held_out_split(source: str, config: str | None = None) -> str | None:
    """``validation`` or ``test`` when ``source`` (a folder, or a Hub data set) has that split, else None."""
    from pathlib import Path

    from gelora.data import FILE_KINDS

    folder = Path(source).expanduser()
    if folder.is_dir():
        present = {split for split in ("validation", "test")
                   if any((folder / f"{split}{ext}").is_file() for ext in FILE_KINDS)}
    elif folder.exists() or folder.suffix in FILE_KINDS:
        return None  # one file: one split
    else:
        import datasets

        from gelora.data import hub_lookups

        try:
            with hub_lookups():  # offline: from the local cache at once, as the data themselves were loaded
                present = set(datasets.get_dataset_split_names(source, config))
        except Exception:  # not a Hub data set, or not cached offline: loading the data will say what is wrong
            return None
    return next((split for split in ("validation", "test") if split in present), None)


def batches(rows: list[dict], collate: Callable[[list[dict]], Any], batch_size: int,
            device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    """Collated batches of ``rows`` in order, on ``device`` (prediction: one process, no labels)."""
    for start in range(0, len(rows), batch_size):
        yield {k: v.to(device) for k, v in collate(rows[start : start + batch_size]).items()}


def first_rows(dataset, n: int | None):
    """The first ``n`` rows (all when ``n`` is None)."""
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


def new_head_modules(model: torch.nn.Module) -> list[str]:
    """An encoder's task head: its top-level children other than the backbone, plus the backbone's pooler.

    BERT-family classifiers read ``tanh(W h_[CLS])`` from the backbone's pooler: that dense layer is the head's
    first layer (RoBERTa and DeBERTa keep theirs inside the head), and checkpoints trained without it, such as
    sentence-transformers' all-MiniLM-L6-v2, carry one that was never trained for the task. Left frozen, it
    cost LoRA most of STS-B (Pearson 0.17 vs 0.87 with it trained; benchmarks/RESULTS.md).
    """
    backbone = getattr(model, "base_model_prefix", "")
    heads = [n for n, m in model.named_children() if n != backbone and any(True for _ in m.parameters())]
    pooler = getattr(getattr(model, backbone, None), "pooler", None)
    if isinstance(pooler, torch.nn.Module) and any(True for _ in pooler.parameters()):
        heads.append(f"{backbone}.pooler")
    return heads
