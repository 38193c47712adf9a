"""Batches of a task's rows: a seeded, resumable training order, evaluation in file order, and EVA's inputs."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Sampler

from gelora.train.tasks import TaskData


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
    collate = data.eval_collate or data.collate
    return DataLoader(data.eval, batch_size=batch_size, collate_fn=collate, generator=torch.Generator())


def input_loader(data: TaskData, batch_size: int, rank: int = 0, world: int = 1) -> DataLoader:
    """Training inputs without labels, in file order (this process's share): what EVA's SVD pass reads."""
    rows = [{k: v for k, v in row.items() if k != "labels"} for row in data.train[rank::world]]
    # EVA wants plain dicts, not the collator's BatchEncoding.
    return DataLoader(
        rows, batch_size=batch_size, collate_fn=lambda b: dict(data.collate(b)), generator=torch.Generator()
    )
