"""How GeLoRA profiles a model and plans its ranks: the options shared by ``profile``, ``plan``, ``train`` and ``bench``.

Plain dataclasses (no torch import), so every command generates the same options with the same help and choices
from them (``gelora.cli_args``), and the library takes the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from gelora.cli_args import option
from gelora.errors import GeloraError, flag

POOLINGS = ("tokens", "mean", "first", "last")
ESTIMATORS = ("twonn", "gride")
RULES = ("lower-bound", "budget")
MIN_BOOTSTRAP = 20  # resamples for an interval (0: none); fewer make its ends the most extreme draws


@dataclass
class ProfileOptions:
    """Which hidden states become points, and how their intrinsic dimension is estimated."""

    pooling: str = option("tokens", "points per text: sampled tokens, or one pooled vector", choices=POOLINGS)
    estimator: str = option("twonn", "intrinsic-dimension estimator", choices=ESTIMATORS)
    num_samples: int = option(1000, "texts profiled, a seeded random subset")
    tokens_per_sequence: int = option(8, "tokens pooling: tokens kept per text")
    max_points: int | None = option(None, "cap on points per boundary (default: no cap)")
    bootstrap: int = option(0, f"bootstrap resamples for the 95% intervals: 0 (none) or at least {MIN_BOOTSTRAP}")

    def validate(self) -> None:
        for name in ("num_samples", "tokens_per_sequence", "max_points"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GeloraError(f"{flag(name)} must be at least 1 (got {value})")
        if not (self.bootstrap == 0 or self.bootstrap >= MIN_BOOTSTRAP):
            raise GeloraError(
                f"--bootstrap must be 0 (no intervals) or at least {MIN_BOOTSTRAP} (fewer make an interval's ends the "
                f"most extreme draws), got {self.bootstrap}"
            )


@dataclass
class PlanOptions:
    """How lower bounds become ranks (see ``gelora.plan.rank_plan``)."""

    rule: str = option("lower-bound", "lower-bound: r = max(lb + offset, min_rank); budget: that shape scaled to "
                       "the parameters of uniform LoRA of --budget-rank", choices=RULES)
    offset: int = option(1, "added to every lower bound")
    min_rank: int = option(1, "smallest rank; 0 lets blocks go without an adapter")
    budget_rank: int | None = option(None, "rule budget: spend the parameters of uniform LoRA of this rank")

    def validate(self) -> None:
        if self.offset < 0 or self.min_rank < 0:
            raise GeloraError(f"--offset and --min-rank must be >= 0 (got {self.offset}, {self.min_rank})")
        if self.rule == "budget" and self.budget_rank is None:
            raise GeloraError("--rule budget needs --budget-rank R (the uniform LoRA rank whose parameters to spend)")
        if self.rule != "budget" and self.budget_rank is not None:
            raise GeloraError(
                f"--budget-rank only applies to --rule budget (got --rule {self.rule}); add --rule budget or drop it"
            )
        if self.budget_rank is not None and self.budget_rank < 1:
            raise GeloraError(f"--budget-rank must be at least 1 (got {self.budget_rank})")
