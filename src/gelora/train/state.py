"""Where a run stands: a small dataclass that Accelerate checkpoints with the model, optimizer and RNG states."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Progress of one run, saved in every checkpoint (``accelerator.register_for_checkpointing``).

    Positions count global steps of ``global_batch_size`` samples (per-process batch x processes), so a run can
    resume on another number of processes given the same global batch.
    """

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0
    global_step: int = 0
    global_batch_size: int = 0
    loss_sum: float = 0.0  # over this epoch's steps so far
    history: list[dict[str, Any]] = field(default_factory=list)  # one evaluation per entry
    elapsed_seconds: float = 0.0  # wall time of the sessions up to the last checkpoint
    step_seconds: list[float] = field(default_factory=list)
    build_info: dict[str, Any] = field(default_factory=dict)  # what the method reported when building

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def end_epoch(self) -> None:
        self.epoch += 1
        self.step_in_epoch = 0
        self.loss_sum = 0.0
