"""What a training run is: one ``TrainConfig`` (a plain dataclass, JSON-serialisable)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gelora.data import task_spec
from gelora.errors import GeloraError

METHODS = ("gelora", "lora", "adalora", "eva", "full", "geolora", "gelora-geolora")
PLANNED_METHODS = ("gelora", "gelora-geolora")  # methods whose ranks come from a GeLoRA profile and plan

# Learning rates that work for BERT-sized models: adapters tolerate (and need) far larger steps than full fine-tuning.
DEFAULT_LR = {"full": 2e-5}
DEFAULT_ADAPTER_LR = 5e-4


@dataclass
class PlanOptions:
    """How the ``gelora`` method profiles the model and turns the profile into ranks (ignored with ``--plan``)."""

    pooling: str = "tokens"
    estimator: str = "twonn"
    num_samples: int = 1000
    bootstrap: int = 0  # the ranks come from the point estimates; intervals only add time
    rule: str = "lower-bound"
    offset: int = 1
    min_rank: int = 1
    budget_rank: int | None = None


@dataclass
class TrainConfig:
    """One fine-tuning run.

    ``out`` receives metrics.json, the adapter (or full model), checkpoints and, for ``gelora``, profile and plan.
    ``lr=None`` picks a per-method default (2e-5 for full fine-tuning, 5e-4 for adapters); ``lora_alpha=None``
    scales every adapted module by alpha / r = 2 whatever its rank.
    ``batch_size`` is per process; ``max_steps`` stops early (for smoke tests and budgets).
    """

    model: str
    task: str
    method: str
    out: str
    plan: str | None = None
    rank: int = 8
    epochs: int = 3
    lr: float | None = None
    batch_size: int = 32
    max_length: int = 128
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    data_dir: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_steps: int | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    lora_alpha: float | None = None  # None: alpha = 2 r in every module
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None
    eval_every_epoch: bool = True
    checkpoint_every: int = 200
    eva_rho: float = 2.0
    adalora_orth_reg_weight: float = 0.5
    geolora_tau: float = 0.15  # the authors' GLUE setting
    geolora_r_max: int | None = None  # None: twice the largest starting rank
    geolora_augment_every: int = 1  # geometric step every N optimizer steps; AdamW trains S in between
    geolora_lr: float | None = None  # step size of S inside the geometric step (None: the optimizer's lr)
    # y = W0 x + s V S U^T x. U, V are orthonormal, so S must reach the size of dW's singular values; s = 10 lets
    # a step of the adapters' lr move the function about as far as LoRA's (alpha = 2r) step does on MiniLM-sized
    # layers. With s = 1, S stayed near 1e-5 after 32 steps of lr 2e-3 and the adapter learned nothing.
    geolora_scaling: float = 10.0
    plan_options: PlanOptions = field(default_factory=PlanOptions)
    progress: bool = True

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR.get(self.method, DEFAULT_ADAPTER_LR)

    def validate(self) -> None:
        """Raise ``GeloraError`` for settings that cannot work, before anything is loaded."""
        if self.method not in METHODS:
            raise GeloraError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        task_spec(self.task)
        if self.plan is not None and self.method not in PLANNED_METHODS:
            raise GeloraError(
                f"--plan only applies to --method {' or '.join(PLANNED_METHODS)} (got --method {self.method}); "
                "drop --plan"
            )
        if self.rank < 1:
            raise GeloraError(f"--rank must be at least 1 (got {self.rank}); LoRA with rank 0 trains nothing")
        counts = ("epochs", "batch_size", "max_length", "checkpoint_every")
        for name in (*counts, "max_train_samples", "max_eval_samples", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:  # None: no limit
                raise GeloraError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.learning_rate <= 0:
            raise GeloraError(f"--lr must be positive (got {self.lr})")
        if self.resume and self.overwrite:
            raise GeloraError("--resume and --overwrite contradict each other; pass one of them")
        if not 0 <= self.geolora_tau < 1:
            raise GeloraError(f"--geolora-tau must be in [0, 1) (got {self.geolora_tau})")
        if self.eva_rho < 1:
            raise GeloraError(f"EVA's rho must be >= 1 (got {self.eva_rho})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["plan_options"] = PlanOptions(**d.get("plan_options", {}))
        return cls(**d)

    def run_identity(self) -> dict[str, Any]:
        """The settings that make two runs the same run (what ``--resume`` must match)."""
        d = self.to_dict()
        # batch_size is per process: a resume may change it with the number of processes (checked as the global
        # batch against the checkpoint, see checkpoint.check_global_batch).
        for key in ("out", "resume", "overwrite", "progress", "data_dir", "batch_size"):
            d.pop(key)
        return d
