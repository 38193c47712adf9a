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
    """Which hidden states become points, and how their intrinsic dimension is estimated.

    The ``gelora profile`` options of the same names (``--tokens-per-sequence``), which ``gelora train`` takes for
    the GeLoRA methods and ``gelora bench`` as method settings (``gelora:pooling=mean``). Taken by
    :func:`gelora.profile.profile_model`, which also accepts each field by keyword.

    Attributes
    ----------
    pooling : {"tokens", "mean", "first", "last"}, default="tokens"
        ``tokens``: up to ``tokens_per_sequence`` seeded random tokens of each text (not padding, not special
        tokens such as [CLS]), one point each; ``mean``, ``first``, ``last``: one point per text (the mean over the
        attention mask, or the first or last non-padding token).
    estimator : {"twonn", "gride"}, default="twonn"
        See :func:`gelora.measure.intrinsic_dimension.twonn` and :func:`~gelora.measure.intrinsic_dimension.gride`.
    num_samples : int or None, default=1000
        Texts profiled: a seeded random subset, kept in order; None (Python only) profiles every text.
    tokens_per_sequence : int, default=8
        Points per text under ``tokens`` pooling (fewer for a text with fewer content tokens).
    max_points : int or None, default=None
        Cap on the points per layer boundary (a seeded random subset, the same rows at every boundary); None: no
        cap.
    bootstrap : int, default=0
        Bootstrap resamples for each boundary's 95% interval: 0 (no interval) or at least ``MIN_BOOTSTRAP`` (20).
        ``gelora profile`` and ``profile_model`` without ``options`` use 100 instead.
    """

    pooling: str = option("tokens", "points per text: sampled tokens, or one pooled vector", choices=POOLINGS)
    estimator: str = option("twonn", "intrinsic-dimension estimator", choices=ESTIMATORS)
    num_samples: int | None = option(1000, "texts profiled, a seeded random subset")
    tokens_per_sequence: int = option(8, "tokens pooling: tokens kept per text")
    max_points: int | None = option(None, "cap on points per boundary (default: no cap)")
    bootstrap: int = option(0, f"bootstrap resamples for the 95% intervals: 0 (none) or at least {MIN_BOOTSTRAP}")

    def validate(self) -> None:
        """Raise ``GeloraError`` for a count below 1, or a ``bootstrap`` neither 0 nor at least ``MIN_BOOTSTRAP``.

        ``pooling`` and ``estimator`` are checked where they are used (the command line's choices, and
        :func:`gelora.profile.profile_model` before any forward pass).
        """
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
    """How lower bounds become ranks (see ``gelora.plan.rank_plan`` for the rules and the caps).

    The ``gelora plan`` options of the same names (``--min-rank``), which ``gelora train`` takes for the GeLoRA
    methods and ``gelora bench`` as method settings (``gelora:offset=0``). Taken by :func:`gelora.plan.plan_ranks`,
    which also accepts each field by keyword. Block i's lower bound is ``lb_i = max(ceil(d_{i+1} - d_i), 0)`` from
    the profile's IDs.

    Attributes
    ----------
    rule : {"lower-bound", "budget"}, default="lower-bound"
        ``lower-bound``: ``r_i = max(lb_i + offset, min_rank)``; ``budget``: that shape scaled so the LoRA
        parameters equal uniform LoRA of rank ``budget_rank`` on the same modules.
    offset : int, default=1
        Added to every lower bound (slack for estimation noise), >= 0.
    min_rank : int, default=1
        Smallest rank of any block, >= 0; 0 (with ``offset=0``) lets blocks whose ID does not grow go without an
        adapter.
    budget_rank : int or None, default=None
        The uniform LoRA rank whose parameter count the ``budget`` rule spends; required by that rule and refused
        by the other.
    """

    rule: str = option("lower-bound", "lower-bound: r = max(lb + offset, min_rank); budget: that shape scaled to "
                       "the parameters of uniform LoRA of --budget-rank", choices=RULES)
    offset: int = option(1, "added to every lower bound")
    min_rank: int = option(1, "smallest rank; 0 lets blocks go without an adapter")
    budget_rank: int | None = option(None, "rule budget: spend the parameters of uniform LoRA of this rank")

    def validate(self) -> None:
        """Raise ``GeloraError`` for a negative ``offset`` or ``min_rank``, a ``budget_rank`` below 1, or a
        ``budget_rank`` missing under the budget rule or given under the other. ``rule`` itself is checked by the
        command line's choices and by :func:`gelora.plan.plan_ranks`."""
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
