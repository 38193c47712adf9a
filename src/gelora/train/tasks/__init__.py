"""Task data for training: label checks, tokenisation, and the seeded, resumable batch order."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Sampler

from gelora.data import TaskSpec, load_task, task_spec, text_pairs
from gelora.errors import GeloraError


@dataclass
class TaskData:
    """Tokenised train and evaluation rows (dicts of token lists plus ``labels``) and their collator."""

    spec: TaskSpec
    train_texts: list[tuple[str, ...]]
    train: list[dict]
    eval: list[dict]
    collate: object


def check_labels(labels: list, spec: TaskSpec, split: str) -> None:
    """Classification needs integer labels in ``[0, num_labels)``; regression needs numbers."""
    bad = next((v for v in labels if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if bad is not None or not labels:
        found = "no rows" if not labels else f"a {type(bad).__name__} label ({bad!r})"
        kind = "numbers" if spec.is_regression else f"integers 0..{spec.num_labels - 1}"
        raise GeloraError(f"glue/{spec.name} {split}: labels must be {kind}, found {found}; fix the data file")
    if spec.is_regression:
        return
    fractional = next((v for v in labels if isinstance(v, float)), None)
    if fractional is not None:
        raise GeloraError(
            f"glue/{spec.name} {split}: classification labels must be integers 0..{spec.num_labels - 1}, "
            f"found the float {fractional!r}; is this a regression file given to a classification task?"
        )
    out_of_range = next((v for v in labels if not 0 <= v < spec.num_labels), None)
    if out_of_range is not None:
        raise GeloraError(
            f"glue/{spec.name} {split}: label {out_of_range} is outside 0..{spec.num_labels - 1} "
            "(unlabelled test rows use -1); use the train and validation splits"
        )


def tokenize_rows(dataset, spec: TaskSpec, tokenizer, max_length: int, split: str) -> list[dict]:
    labels = list(dataset["label"]) if "label" in dataset.column_names else []
    check_labels(labels, spec, split)
    columns = list(zip(*text_pairs(dataset, spec.text_columns)))
    encoded = tokenizer(*columns, truncation=True, max_length=max_length)
    label_type = float if spec.is_regression else int
    return [
        {**{k: v[i] for k, v in encoded.items()}, "labels": label_type(labels[i])} for i in range(len(labels))
    ]


def load_task_data(
    task: str,
    tokenizer,
    max_length: int,
    data_dir: str | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> TaskData:
    """Load a GLUE task, keep the first ``max_*_samples`` rows of each split, and tokenise (no padding yet)."""
    from transformers import DataCollatorWithPadding

    ds = load_task(task, data_dir)
    spec = task_spec(task)
    train, evaluation = ds["train"], ds[spec.eval_split]
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    if max_eval_samples is not None:
        evaluation = evaluation.select(range(min(max_eval_samples, len(evaluation))))
    return TaskData(
        spec=spec,
        train_texts=text_pairs(train, spec.text_columns),
        train=tokenize_rows(train, spec, tokenizer, max_length, "train"),
        eval=tokenize_rows(evaluation, spec, tokenizer, max_length, spec.eval_split),
        collate=DataCollatorWithPadding(tokenizer),
    )


class EpochPermutation(Sampler[int]):
    """Row order of one epoch: a permutation seeded by ``(seed, epoch)``, so a resumed run sees the same order."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def train_loader(data: TaskData, batch_size: int, seed: int) -> DataLoader:
    # An own generator: DataLoader otherwise draws its base seed from the global RNG each epoch, which would make
    # dropout after a mid-epoch resume differ from the uninterrupted run.
    return DataLoader(
        data.train,
        batch_size=batch_size,
        sampler=EpochPermutation(len(data.train), seed),
        collate_fn=data.collate,
        generator=torch.Generator().manual_seed(seed),
    )


def eval_loader(data: TaskData, batch_size: int) -> DataLoader:
    return DataLoader(data.eval, batch_size=batch_size, collate_fn=data.collate, generator=torch.Generator())


def input_loader(data: TaskData, batch_size: int, rank: int = 0, world: int = 1) -> DataLoader:
    """Training inputs without labels, in file order (this process's share): what EVA's SVD pass reads."""
    rows = [{k: v for k, v in row.items() if k != "labels"} for row in data.train[rank::world]]
    # EVA wants plain dicts, not the collator's BatchEncoding.
    return DataLoader(
        rows, batch_size=batch_size, collate_fn=lambda b: dict(data.collate(b)), generator=torch.Generator()
    )
