"""Classification or regression on a user's own labelled rows (``--task classify --data FILE --text-columns a[,b]``).

String (or integer) labels become class ids in sorted order; the mapping is stored in the model config's
``id2label`` / ``label2id``, so the saved adapter predicts label names. Float labels (or ``--problem regression``)
make a regression on one output.
"""

from __future__ import annotations

import math
from typing import Any

from gelora.errors import GeloraError
from gelora.train.tasks.base import TaskData
from gelora.train.tasks.classification import SequenceClassification

CLASSIFICATION_METRICS = ("accuracy", "macro_f1")
REGRESSION_METRICS = ("pearson", "spearman")


class Classify(SequenceClassification):
    """Any number of classes (or a regression) over one or two text columns of ``--data``."""

    uses_data_options = frozenset(
        {"data", "eval_data", "data_config", "train_split", "eval_split", "eval_fraction", "text_columns",
         "label_column", "problem"}
    )

    def __init__(self, config):
        super().__init__(config)
        self.label_names: list[str] = []
        self.restored = False  # True once a finished run's classes are set (evaluate, predict)
        self.metrics = REGRESSION_METRICS if config.data_options.problem == "regression" else CLASSIFICATION_METRICS
        self.num_labels = 1 if config.data_options.problem == "regression" else 0  # set from the data in load()

    def validate(self) -> None:
        super().validate()
        options = self.config.data_options
        if options.data is None or not options.text_columns:
            raise GeloraError("--task classify needs --data FILE and --text-columns (one column, or two for pairs)")
        if len(options.text_columns) > 2:
            raise GeloraError(f"--text-columns takes one column or two (a pair), got {len(options.text_columns)}")

    @property
    def text_columns(self) -> tuple[str, ...]:
        return tuple(self.config.data_options.text_columns)

    def load(self, tokenizer) -> TaskData:
        from gelora.data import text_pairs

        train, evaluation = self.load_splits()
        self.check_rows(train, "training")
        train_labels = list(train[self.config.data_options.label_column])
        if self.config.data_options.problem is None and all(isinstance(v, float) for v in train_labels):
            self.metrics, self.num_labels = REGRESSION_METRICS, 1
        if not self.is_regression:
            # Integer labels keep their numeric order (0, 1, 2, ..., 10), so class id = label where labels are 0..K-1.
            integers = all(isinstance(v, int) and not isinstance(v, bool) for v in train_labels)
            self.label_names = [str(v) for v in sorted(set(train_labels))] if integers else sorted(
                {str(v) for v in train_labels})
            if len(self.label_names) < 2:
                raise GeloraError(f"the training labels hold one class ({self.label_names}); classification needs two")
            self.num_labels = len(self.label_names)
        data = self.load_eval(tokenizer, evaluation)
        data.train = self.tokenize(train, tokenizer, self.text_columns, self._label_ids(train_labels, "training"))
        data.profile_texts = text_pairs(train, self.text_columns)
        return data

    def hold_out(self, rows, fraction: float):
        """Rows checked before the seeded split, so that an error names the row's place in the file."""
        from gelora.data import text_pairs

        self.check_rows(rows, "training")
        text_pairs(rows, self.text_columns)  # text cells that are not text, by row
        return super().hold_out(rows, fraction)

    def restore(self, metrics: dict[str, Any], tokenizer) -> None:
        """The run's problem and class names (``metrics.json``: ``problem``, ``labels`` in id order)."""
        super().restore(metrics, tokenizer)
        self.restored = True
        if metrics["problem"] == "regression":
            self.metrics, self.num_labels = REGRESSION_METRICS, 1
        else:
            self.metrics, self.label_names = CLASSIFICATION_METRICS, list(metrics["labels"])
            self.num_labels = len(self.label_names)

    def load_eval(self, tokenizer, dataset) -> TaskData:
        """Rows labelled with the training run's classes (a label it never saw is refused)."""
        from transformers import DataCollatorWithPadding

        self.check_rows(dataset, "evaluation")
        labels = self._label_ids(list(dataset[self.config.data_options.label_column]), "evaluation")
        return TaskData(
            train=[],
            eval=self.tokenize(dataset, tokenizer, self.text_columns, labels),
            collate=DataCollatorWithPadding(tokenizer),
            profile_texts=[],
            info={"labels": self.label_names or None, "problem": "regression" if self.is_regression else
                  "classification"},
        )

    def check_rows(self, dataset, split: str) -> None:
        """Refuse rows the task cannot use: missing columns, no rows, rows without a label."""
        from gelora.data import check_columns

        column = self.config.data_options.label_column
        try:
            check_columns(dataset, (*self.text_columns, column), where=f"the {split} data")
        except GeloraError as e:  # a run being set up names its columns with flags; evaluate and predict take the run's
            raise GeloraError(str(e) if self.restored else f"{e}; fix --text-columns / --label-column") from None
        if len(dataset) == 0:
            raise GeloraError(f"the {split} data has no rows; give more rows or a larger --eval-fraction")
        # An empty CSV cell reads as None (or NaN in a float column): a class named "None" would be silently wrong.
        missing = sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in dataset[column])
        if missing:
            raise GeloraError(f"{missing} {split} row(s) have no label in column {column!r} (an empty cell or null); "
                              "fill in their labels or drop those rows")

    def _label_ids(self, labels: list, split: str) -> list:
        """Class ids of ``labels`` in ``label_names`` order (regression: the numbers)."""
        if self.is_regression:
            return _numbers(labels, split)
        unseen = sorted({str(v) for v in labels} - set(self.label_names))
        if unseen:
            # A finished run (evaluate) cannot take new training rows; a run being set up can.
            fix = f"drop those {split} rows"
            fix = fix if self.restored else f"add training rows with them, or {fix}"
            raise GeloraError(
                f"label(s) {', '.join(map(repr, unseen))} appear only in the {split} data, not among the training "
                f"labels ({', '.join(self.label_names)}); the model cannot predict them: {fix}"
            )
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[str(v)] for v in labels]


def _numbers(labels: list, split: str) -> list[float]:
    bad = [v for v in labels if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise GeloraError(f"regression labels must be numbers; the {split} data holds {bad[0]!r}; fix it, or drop "
                          "--problem regression")
    return [float(v) for v in labels]
