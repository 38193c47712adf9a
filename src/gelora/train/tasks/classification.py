"""Sentence(-pair) classification and regression: what GLUE and a user's own labelled file have in common."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gelora.data import check_columns
from gelora.train.metrics import compute_metrics
from gelora.train.tasks.base import Task, batches, new_head_modules


class SequenceClassification(Task):
    """A ``AutoModelForSequenceClassification`` head over one or two text columns; subclasses load the rows.

    Subclasses set ``num_labels`` (1 means regression), ``metrics`` (names in ``gelora.train.metrics.METRICS``,
    the first one selected on), ``label_names`` (class names by id; none: Transformers' ``LABEL_<i>``) and
    ``text_columns`` once their data is known.
    """

    num_labels: int
    metrics: tuple[str, ...]
    label_names: Sequence[str] = ()
    text_columns: tuple[str, ...]

    def tokenize(self, dataset, tokenizer, text_columns: tuple[str, ...], labels: list | None = None) -> list[dict]:
        """Rows of token lists (one text or a pair, truncated to ``max_length``), with their ``labels`` if given."""
        from gelora.data import text_pairs

        columns = list(zip(*text_pairs(dataset, text_columns)))
        encoded = tokenizer(*columns, truncation=True, max_length=self.config.max_length)
        rows = [{k: v[i] for k, v in encoded.items()} for i in range(len(dataset))]
        return rows if labels is None else [row | {"labels": label} for row, label in zip(rows, labels)]

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    def head_config(self) -> dict[str, Any]:
        """What the model config says about the head: regression, or the class names by id.

        Set at loading, so the config saved beside the adapter (``gelora.models.save_class_names``) names the
        run's classes and head kind, and a model reloaded from it outputs names instead of ``LABEL_<i>``.
        """
        if self.is_regression:
            return {"problem_type": "regression"}
        head: dict[str, Any] = {"problem_type": "single_label_classification"}
        if self.label_names:
            id2label = dict(enumerate(self.label_names))
            head |= {"id2label": id2label, "label2id": {name: i for i, name in id2label.items()}}
        return head

    def build_model(self) -> torch.nn.Module:
        from gelora.models import load_classifier

        return load_classifier(self.config.model, self.num_labels, **self.head_config())

    def head_modules(self, model: torch.nn.Module) -> list[str]:
        """The classifier (and a BERT-family backbone's pooler, the classifier's first layer)."""
        return new_head_modules(model)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loader, accelerator) -> dict[str, float]:
        """Task metrics from the logits of every evaluation row, gathered from every process (padding dropped)."""
        model.eval()
        logits, labels = [], []
        for batch in loader:
            out = model(**{k: v for k, v in batch.items() if k != "labels"})
            batch_logits, batch_labels = accelerator.gather_for_metrics((out.logits.float(), batch["labels"]))
            logits.append(batch_logits.cpu().numpy())
            labels.append(batch_labels.cpu().numpy())
        model.train()
        return compute_metrics(np.concatenate(logits), np.concatenate(labels), self.metrics, self.is_regression)

    def check_inputs(self, dataset) -> None:
        from gelora.data import text_pairs

        check_columns(dataset, self.text_columns)
        text_pairs(dataset, self.text_columns)  # every value is text

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, tokenizer, dataset, batch_size: int) -> list[dict[str, Any]]:
        """``{"label": name, "scores": {name: probability}}`` per row (regression: ``{"value": x}``)."""
        from transformers import DataCollatorWithPadding

        self.check_inputs(dataset)
        rows = self.tokenize(dataset, tokenizer, self.text_columns)
        device = next(model.parameters()).device
        model.eval()
        logits = torch.cat([model(**batch).logits.float().cpu()
                            for batch in batches(rows, DataCollatorWithPadding(tokenizer), batch_size, device)])
        if self.is_regression:
            return [{"value": value} for value in logits[:, 0].tolist()]
        probabilities = logits.softmax(dim=-1)
        return [{"label": self.label_names[best], "scores": dict(zip(self.label_names, p))}
                for best, p in zip(probabilities.argmax(dim=-1).tolist(), probabilities.tolist())]
