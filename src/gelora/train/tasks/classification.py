"""Sentence(-pair) classification and regression: what GLUE and a user's own labelled file have in common."""

from __future__ import annotations

import numpy as np
import torch

from gelora.train.metrics import compute_metrics
from gelora.train.tasks.base import Task, new_head_modules


class SequenceClassification(Task):
    """A ``AutoModelForSequenceClassification`` head over one or two text columns; subclasses load the rows.

    Subclasses set ``num_labels`` (1 means regression) and ``metrics`` (names in ``gelora.train.metrics.METRICS``,
    the first one selected on) once their data is known.
    """

    num_labels: int
    metrics: tuple[str, ...]

    def tokenize(self, dataset, tokenizer, text_columns: tuple[str, ...], labels: list) -> list[dict]:
        """Rows of token lists (one text or a pair, truncated to ``max_length``) with their ``labels``."""
        from gelora.data import text_pairs

        columns = list(zip(*text_pairs(dataset, text_columns)))
        encoded = tokenizer(*columns, truncation=True, max_length=self.config.max_length)
        return [{**{k: v[i] for k, v in encoded.items()}, "labels": label} for i, label in enumerate(labels)]

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    def build_model(self) -> torch.nn.Module:
        from gelora.models import load_classifier

        return load_classifier(self.config.model, self.num_labels)

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
