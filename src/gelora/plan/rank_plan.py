"""LoRA ranks per transformer block from an intrinsic-dimension profile (GeLoRA), as a PEFT ``LoraConfig``.

Block i maps boundary i to boundary i + 1. GeLoRA's bound: an adapter on block i needs rank at least
``lb_i = max(ceil(d_{i+1} - d_i), 0)`` to account for the dimensions the block adds. Two rules turn bounds into ranks:

``lower-bound``
    ``r_i = max(lb_i + offset, min_rank)``. Defaults ``offset=1, min_rank=1``: the bound is a *lower* bound on a
    noisy estimate (TwoNN's 95% interval is typically 0.5-1 wide at a few thousand points), so one unit of slack
    keeps a block from being starved by estimation noise; and a block whose ID does not grow still transforms its
    input, so it keeps a rank-1 adapter (cost: in + out parameters per module) rather than none. ``min_rank=0`` with
    ``offset=0`` is the literal bound: blocks with lb 0 get no adapter.
``budget``
    The same shape ``max(lb_i + offset, min_rank)`` scaled so the trainable LoRA parameters equal uniform LoRA of
    rank ``budget_rank`` on the same modules (within a few parameters when every block has the same module shapes;
    a block's cost is its rank times the sum of (in + out) over its modules, so unequal blocks are handled by their
    parameters, not their ranks). No block goes below ``min_rank``; integer ranks by largest remainder.

An undefined boundary ID (e.g. all points identical) takes the value of the nearest defined boundary, so the blocks
next to it get lb 0 and hence ``offset`` / ``min_rank``; the plan's notes say which. The plans from the ends of the
bootstrap intervals (``conservative``: ``ceil(hi_{i+1} - lo_i)``, ``liberal``: ``ceil(lo_{i+1} - hi_i)``) come with
every plan as ``ci_ranks``, to show how stable the ranks are.

``to_lora_config`` sets ``lora_alpha = 2 r`` per module (``alpha_ratio``), so the update scale alpha / r is the same in
every module and the ranks alone differ between blocks, as in uniform LoRA with the common ``alpha = 2 r``.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from gelora.errors import GeloraError
from gelora.io import read_format_json, write_format_json
from gelora.plan.targets import find_block_targets, linear_shape, resolve_modules

if TYPE_CHECKING:
    import peft

    from gelora.profile import Profile

RULES = ("lower-bound", "budget")
DEFAULT_OFFSET = 1
DEFAULT_MIN_RANK = 1
DEFAULT_ALPHA_RATIO = 2.0
PLAN_FORMAT = "gelora.plan/1"


@dataclass
class BlockPlan:
    """Rank of block ``index``: ``lb`` is its GeLoRA lower bound (None in a uniform plan); rank 0 means no adapter."""

    index: int
    lb: int | None
    rank: int
    modules: list[str]


@dataclass
class RankPlan:
    """Ranks per block and the modules they apply to.

    Attributes
    ----------
    blocks : list of BlockPlan
    rule : str
        ``lower-bound``, ``budget`` or ``uniform``.
    params : dict
        The rule's numbers (offset, min_rank, budget_rank, the budget in parameters ...).
    model : str
        The model the plan was made for.
    total_params : int
        Trainable LoRA parameters: sum over adapted modules of rank * (in + out).
    fan_in_fan_out : bool
        True when the targets are ``Conv1D`` layers (GPT-2), which store weights transposed.
    ci_ranks : dict
        Ranks from the ends of the bootstrap intervals (``conservative``, ``liberal``).
    notes : list of str
        Anything the reader should know (undefined IDs and how they were filled, budget deviation).
    """

    blocks: list[BlockPlan]
    rule: str
    params: dict
    model: str
    total_params: int
    fan_in_fan_out: bool = False
    ci_ranks: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ranks(self) -> list[int]:
        return [b.rank for b in self.blocks]

    def ranks_by_module(self) -> dict[str, int]:
        """Full module name -> rank, for every adapted module (rank-0 blocks left out)."""
        return {m: b.rank for b in self.blocks if b.rank > 0 for m in b.modules}

    def check_model(self, model: nn.Module) -> None:
        """Raise GeloraError unless every planned module exists in ``model`` (a plan from another model fails)."""
        found = resolve_modules(model, [m for b in self.blocks for m in b.modules])
        missing = [name for name, module in found.items() if module is None]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise GeloraError(
                f"this plan was made for {self.model!r}; {type(model).__name__} lacks its module(s) {shown}; "
                "make a plan for this model with `gelora plan --model ...`"
            )

    def to_lora_config(self, *, alpha_ratio: float = DEFAULT_ALPHA_RATIO, **lora_kwargs) -> "peft.LoraConfig":
        """A ``peft.LoraConfig`` that gives each module its planned rank.

        ``target_modules`` is the explicit list of adapted module names (rank-0 blocks left out); ``rank_pattern`` and
        ``alpha_pattern`` are keyed by the escaped full names. PEFT matches those keys as ``(.*\\.)?<key>$``, so they
        also hit the same modules under a task head's prefix (``bert.`` + name). Alpha is ``alpha_ratio * r`` per
        module unless ``lora_alpha`` is given (then it is fixed everywhere).

        Parameters
        ----------
        alpha_ratio : float
            lora_alpha / r in every module.
        **lora_kwargs
            Any other ``LoraConfig`` field (``lora_dropout``, ``task_type``, ``modules_to_save`` ...).
        """
        from peft import LoraConfig

        for key in ("r", "target_modules", "rank_pattern"):
            if key in lora_kwargs:
                raise GeloraError(f"{key!r} comes from the plan; do not pass it to to_lora_config")
        ranks = self.ranks_by_module()
        if not ranks:
            raise GeloraError("the plan gives every block rank 0: nothing to adapt; lower --min-rank/--offset")
        default_r = Counter(ranks.values()).most_common(1)[0][0]
        rank_pattern = {re.escape(name): r for name, r in ranks.items()}
        if "lora_alpha" in lora_kwargs:
            alpha = {}
        else:
            lora_kwargs["lora_alpha"] = alpha_ratio * default_r
            alpha = {re.escape(name): alpha_ratio * r for name, r in ranks.items()}
        lora_kwargs.setdefault("fan_in_fan_out", self.fan_in_fan_out)
        return LoraConfig(
            r=default_r, target_modules=list(ranks), rank_pattern=rank_pattern, alpha_pattern=alpha, **lora_kwargs
        )

    def table(self) -> str:
        """Text summary: rule, one line per block, CI ranks, total parameters, notes."""
        settings = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"rule: {self.rule} ({settings})", f"{'block':>5} {'lb':>4} {'rank':>5}  modules"]
        for b in self.blocks:
            lb = "-" if b.lb is None else b.lb
            short = ", ".join(m.rsplit(".", 1)[-1] for m in b.modules)
            lines.append(f"{b.index:>5} {lb:>4} {b.rank:>5}  {len(b.modules)}: {short}")
        for name, ranks in self.ci_ranks.items():
            lines.append(f"ranks from the {name} CI end: {ranks}")
        lines.append(f"trainable LoRA parameters: {self.total_params:,}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self, path: str | os.PathLike) -> None:
        write_format_json(path, PLAN_FORMAT, asdict(self))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "RankPlan":
        obj = read_format_json(path, PLAN_FORMAT, "plan", "gelora plan")
        try:
            obj["blocks"] = [BlockPlan(**b) for b in obj["blocks"]]
            return cls(**obj)
        except (KeyError, TypeError) as e:
            raise GeloraError(f"plan {str(path)!r} is malformed ({e})") from None


# ------------------------------------------------------------------------------------------- parameter counting


def _module_costs(model: nn.Module, names: list[str]) -> dict[str, int]:
    """in + out features of each module: its LoRA parameters per unit of rank."""
    found = resolve_modules(model, names)
    missing = [n for n, m in found.items() if m is None]
    if missing:
        raise GeloraError(f"{type(model).__name__} has no module(s) {', '.join(missing[:5])}")
    return {n: sum(linear_shape(m)) for n, m in found.items()}


def lora_param_count(model: nn.Module, ranks_by_module: dict[str, int]) -> int:
    """Trainable LoRA parameters of ``ranks_by_module`` on ``model``: sum of r * (in + out)."""
    costs = _module_costs(model, list(ranks_by_module))
    return sum(r * costs[name] for name, r in ranks_by_module.items())


def _is_conv1d_plan(model: nn.Module, targets: list[list[str]]) -> bool:
    found = resolve_modules(model, [m for block in targets for m in block])
    return all(not isinstance(m, nn.Linear) for m in found.values())


# ------------------------------------------------------------------------------------------------ the rules


def _bound(d_in: float, d_out: float) -> int:
    # Rounded first so float noise (2.0000000001) does not add a whole rank.
    return max(math.ceil(round(d_out - d_in, 6)), 0)


def _fill_undefined(values: list[float | None]) -> tuple[list[float], list[int]]:
    """Replace None by the nearest defined value (the earlier one on ties); also return the filled indices."""
    defined = [i for i, v in enumerate(values) if v is not None]
    if not defined:
        raise GeloraError("every boundary ID in the profile is undefined; profile with more or other data/pooling")
    filled = [v if v is not None else values[min(defined, key=lambda j: (abs(j - i), j))] for i, v in enumerate(values)]
    return filled, [i for i, v in enumerate(values) if v is None]


def lower_bounds(profile: "Profile") -> tuple[list[int], dict[str, list[int]], list[str]]:
    """GeLoRA bounds per block from the point IDs, bounds from the CI ends, and notes on undefined boundaries."""
    ids, undefined = _fill_undefined(profile.dimensions)
    lbs = [_bound(a, b) for a, b in zip(ids, ids[1:])]
    lo, _ = _fill_undefined([b.ci_low if b.ci_low is not None else b.id for b in profile.boundaries])
    hi, _ = _fill_undefined([b.ci_high if b.ci_high is not None else b.id for b in profile.boundaries])
    ci = {
        "conservative": [_bound(lo[i], hi[i + 1]) for i in range(len(lbs))],
        "liberal": [_bound(hi[i], lo[i + 1]) for i in range(len(lbs))],
    }
    notes = [
        f"boundary {i} ({profile.boundaries[i].name}) has no ID ({profile.boundaries[i].reason}); "
        f"it takes the nearest defined ID, so the neighbouring block(s) get lb 0"
        for i in undefined
    ]
    return lbs, ci, notes


def _shape(lbs: list[int], offset: int, min_rank: int) -> list[int]:
    return [max(lb + offset, min_rank) for lb in lbs]


def _scale_to_budget(shape: list[int], costs: list[int], budget: int, min_rank: int) -> list[int]:
    """Integer ranks proportional to ``shape`` (each >= min_rank where shape > 0) with sum(r * cost) ~= budget."""
    fixed: dict[int, int] = {}
    while True:  # blocks that scaling would push below min_rank are pinned there; the rest share what is left
        free = [i for i, s in enumerate(shape) if s > 0 and i not in fixed]
        left = budget - sum(costs[i] * r for i, r in fixed.items())
        if not free or left <= 0:
            raise GeloraError(f"a budget of {budget:,} parameters cannot give every block min_rank {min_rank}")
        scale = left / sum(costs[i] * shape[i] for i in free)
        low = [i for i in free if scale * shape[i] < min_rank]
        if not low:
            break
        fixed.update({i: min_rank for i in low})
    exact = {i: scale * shape[i] for i in free}
    ranks = [fixed.get(i, math.floor(exact.get(i, 0.0))) for i in range(len(shape))]
    left = budget - sum(r * c for r, c in zip(ranks, costs))
    # Largest remainder, in parameters: a block gets one more rank while that brings the total closer to the budget.
    for i in sorted(free, key=lambda i: exact[i] - math.floor(exact[i]), reverse=True):
        if left >= costs[i] / 2:
            ranks[i] += 1
            left -= costs[i]
    return ranks


def _apply_rule(
    lbs: list[int], rule: str, offset: int, min_rank: int, costs: list[int], budget: int | None
) -> list[int]:
    shape = _shape(lbs, offset, min_rank)
    if rule == "lower-bound" or not any(shape):  # an all-zero shape has nowhere to put a budget
        return shape
    return _scale_to_budget(shape, costs, budget, min_rank)


def _load_model(model: nn.Module | str | None, profile: "Profile | None" = None) -> tuple[nn.Module, str]:
    if isinstance(model, nn.Module):
        return model, getattr(model, "name_or_path", "") or type(model).__name__
    from gelora.models import load_backbone

    name = model or (profile.model if profile else None)
    if not name:
        raise GeloraError("no model given and none recorded in the profile; pass --model")
    return load_backbone(name), name


def _block_targets(model: nn.Module, target_modules) -> tuple[list[list[str]], list[int]]:
    targets = find_block_targets(model, target_modules)
    costs_by_name = _module_costs(model, [m for block in targets for m in block])
    return targets, [sum(costs_by_name[m] for m in block) for block in targets]


def plan_ranks(
    profile: "Profile",
    model: nn.Module | str | None = None,
    rule: str = "lower-bound",
    offset: int = DEFAULT_OFFSET,
    min_rank: int = DEFAULT_MIN_RANK,
    budget_rank: int | None = None,
    target_modules: list[str] | None = None,
) -> RankPlan:
    """Ranks per block of ``model`` from ``profile`` (see the module docstring for the rules).

    Parameters
    ----------
    profile : Profile
        Must have one boundary more than the model has blocks.
    model : torch.nn.Module or str, optional
        The model (or its name) to plan for; default: the profile's model.
    rule : {"lower-bound", "budget"}
    offset, min_rank : int
        ``r_i = max(lb_i + offset, min_rank)`` (the shape, for the budget rule).
    budget_rank : int, optional
        Budget rule: match the parameters of uniform LoRA with this rank on the same modules.
    target_modules : list of str, optional
        Module-name suffixes inside each block; default: all its linear layers.
    """
    if rule not in RULES:
        raise GeloraError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    if offset < 0 or min_rank < 0:
        raise GeloraError(f"offset and min_rank must be >= 0, got {offset} and {min_rank}")
    if rule == "budget" and (budget_rank is None or budget_rank < 1):
        raise GeloraError(f"the budget rule needs --budget-rank >= 1 (the uniform rank to match), got {budget_rank}")
    model, name = _load_model(model, profile)
    targets, costs = _block_targets(model, target_modules)
    if len(targets) != profile.num_blocks:
        raise GeloraError(
            f"the profile has {len(profile.boundaries)} boundaries ({profile.num_blocks} blocks, model "
            f"{profile.model!r}) but {name!r} has {len(targets)} blocks; profile this model first"
        )
    lbs, ci_lbs, notes = lower_bounds(profile)
    params = {"offset": offset, "min_rank": min_rank}
    budget = None
    if rule == "budget":
        budget = budget_rank * sum(costs)
        params.update(budget_rank=budget_rank, budget_params=budget)
    ranks = _apply_rule(lbs, rule, offset, min_rank, costs, budget)
    if rule == "budget" and not any(ranks):
        raise GeloraError("every block has rank 0 under this profile; the budget rule needs --offset >= 1 or --min-rank")
    total = sum(r * c for r, c in zip(ranks, costs))
    if budget:
        notes.append(f"budget: {total:,} parameters vs {budget:,} for uniform rank {budget_rank} ({total / budget - 1:+.2%})")
    return RankPlan(
        blocks=[BlockPlan(i, lb, r, mods) for i, (lb, r, mods) in enumerate(zip(lbs, ranks, targets))],
        rule=rule,
        params=params,
        model=name,
        total_params=total,
        fan_in_fan_out=_is_conv1d_plan(model, targets),
        ci_ranks={k: _apply_rule(v, rule, offset, min_rank, costs, budget) for k, v in ci_lbs.items()},
        notes=notes,
    )


def uniform_plan(model: nn.Module | str, rank: int, target_modules: list[str] | None = None) -> RankPlan:
    """Uniform LoRA of ``rank`` on the same modules a GeLoRA plan would adapt: the baseline to compare against."""
    if rank < 1:
        raise GeloraError(f"uniform rank must be >= 1, got {rank}")
    model, name = _load_model(model)
    targets, costs = _block_targets(model, target_modules)
    return RankPlan(
        blocks=[BlockPlan(i, None, rank, mods) for i, mods in enumerate(targets)],
        rule="uniform",
        params={"rank": rank},
        model=name,
        total_params=rank * sum(costs),
        fan_in_fan_out=_is_conv1d_plan(model, targets),
    )
