"""GLUE tasks (``--task glue/<name>``): a local folder of jsonl files or ``nyu-mll/glue`` from the Hub."""

from __future__ import annotations

from gelora.data import TaskSpec, check_columns, load_task, task_spec, text_pairs
from gelora.errors import GeloraError
from gelora.train.tasks.base import TaskData, first_rows
from gelora.train.tasks.classification import SequenceClassification

# STS-B similarity scores are defined on 0 (unrelated) .. 5 (equivalent).
STSB_RANGE = (0.0, 5.0)
# Class names by label id, as the Hub's nyu-mll/glue names them (ClassLabel features).
LABEL_NAMES = {
    "cola": ["unacceptable", "acceptable"],
    "sst2": ["negative", "positive"],
    "mrpc": ["not_equivalent", "equivalent"],
    "qnli": ["entailment", "not_entailment"],
    "rte": ["entailment", "not_entailment"],
    "mnli": ["entailment", "neutral", "contradiction"],
    "qqp": ["not_duplicate", "duplicate"],
}


class Glue(SequenceClassification):
    """One GLUE task: its text columns, label kind and metrics from ``gelora.data.GLUE_TASKS``.

    ``--eval-data FILE`` (rows in the task's schema) replaces the task's validation split.
    """

    uses_data_options = frozenset({"eval_data"})

    def __init__(self, config):
        super().__init__(config)
        self.spec: TaskSpec = task_spec(config.task)
        self.num_labels = self.spec.num_labels
        self.metrics = self.spec.metrics
        self.label_names = LABEL_NAMES.get(self.spec.name, [])
        self.text_columns = self.spec.text_columns

    @property
    def name(self) -> str:
        return f"glue/{self.spec.name}"

    def validate(self) -> None:
        from gelora.data import data_dir, glue_files

        super().validate()
        root = data_dir(self.config.data_dir)  # a missing folder or file fails here, before any model is loaded
        if root is not None:
            glue_files(self.config.task, root)

    def load(self, tokenizer) -> TaskData:
        """The train and evaluation splits (first ``max_*_samples`` rows of each), tokenised without padding."""
        from gelora.data import load_split

        config = self.config
        ds = load_task(config.task, config.data_dir)
        train = first_rows(ds["train"], config.max_train_samples)
        train_rows = self._tokenize(train, tokenizer, "train")
        eval_file = config.data_options.eval_data
        evaluation = ds[self.spec.eval_split] if eval_file is None else load_split(eval_file)
        data = self.load_eval(tokenizer, first_rows(evaluation, config.max_eval_samples), eval_file or
                              self.spec.eval_split)
        data.train = train_rows
        data.profile_texts = text_pairs(train, self.spec.text_columns)
        return data

    def load_eval(self, tokenizer, dataset, split: str = "evaluation") -> TaskData:
        from transformers import DataCollatorWithPadding

        return TaskData(train=[], eval=self._tokenize(dataset, tokenizer, split),
                        collate=DataCollatorWithPadding(tokenizer), profile_texts=[])

    def _tokenize(self, dataset, tokenizer, split: str) -> list[dict]:
        if "label" not in dataset.column_names:
            raise GeloraError(
                f"{self.name} {split}: the data has no 'label' column (columns: {', '.join(dataset.column_names)}); "
                "use a labelled GLUE file"
            )
        check_columns(dataset, self.spec.text_columns)
        labels = list(dataset["label"])
        check_labels(labels, self.spec, split)
        label_type = float if self.spec.is_regression else int
        return self.tokenize(dataset, tokenizer, self.spec.text_columns, [label_type(v) for v in labels])


def check_labels(labels: list, spec: TaskSpec, split: str) -> None:
    """Classification needs integer labels in ``[0, num_labels)``; regression numbers (STS-B: in 0..5)."""
    where = f"glue/{spec.name} {split}"
    bad = next((v for v in labels if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if bad is not None or not labels:
        found = "no rows" if not labels else f"a {type(bad).__name__} label ({bad!r})"
        kind = "numbers" if spec.is_regression else f"integers 0..{spec.num_labels - 1}"
        raise GeloraError(f"{where}: labels must be {kind}, found {found}; fix the data file")
    if spec.is_regression:
        low, high = STSB_RANGE
        outside = next((v for v in labels if not low <= v <= high), None) if spec.name == "stsb" else None
        if outside is not None:
            raise GeloraError(f"{where}: similarity {outside!r} is outside STS-B's {low:g}..{high:g}; fix the data file")
        return
    fractional = next((v for v in labels if isinstance(v, float)), None)
    if fractional is not None:
        raise GeloraError(
            f"{where}: classification labels must be integers 0..{spec.num_labels - 1}, "
            f"found the float {fractional!r}; is this a regression file given to a classification task?"
        )
    out_of_range = next((v for v in labels if not 0 <= v < spec.num_labels), None)
    if out_of_range is not None:
        raise GeloraError(
            f"{where}: label {out_of_range} is outside 0..{spec.num_labels - 1} "
            "(unlabelled test rows use -1); use the train and validation splits"
        )
