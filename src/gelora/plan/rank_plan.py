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

Ranks are capped at what a block can use. A LoRA update of a d_in x d_out matrix has rank at most
``min(d_in, d_out)``, so a larger r only adds parameters (``--min-rank 100000`` once planned 4.1 billion for a 22M
model). A block's cap is the smallest ``min(in, out)`` over its target modules (all take the block's rank; a
grouped-query k_proj is often the narrowest). Settings no block could honour are errors, raised before any rank is
computed: ``min_rank``, ``offset`` or ``budget_rank`` above the smallest cap (uniform LoRA of ``budget_rank`` must
itself fit, or the budget is no budget). Ranks a rule computes above a cap, from a large lower bound or from the
budget scaling, are capped and the plan's notes name each capped block; under the budget rule the parameters a
capped block cannot take go to the other blocks, so the budget is met whenever the adapted blocks can hold it.

An undefined boundary ID (e.g. all points identical) takes the value of the nearest defined boundary, so the blocks
next to it get lb 0 and hence ``offset`` / ``min_rank``; the plan's notes say which. The plans from the ends of the
bootstrap intervals (``conservative``: ``ceil(hi_{i+1} - lo_i)``, ``liberal``: ``ceil(lo_{i+1} - hi_i)``) come with
every plan as ``ci_ranks``, to show how stable the ranks are.

``to_lora_config`` sets ``lora_alpha = 2 r`` per module (``alpha_ratio``), so the update scale alpha / r is the same in
every module and the ranks alone differ between blocks, as in uniform LoRA with the common ``alpha = 2 r``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from scipy.optimize import brentq
from torch import nn

from gelora.errors import GeloraError
from gelora.io import read_format_json, write_format_json
from gelora.options import RULES, PlanOptions
from gelora.plan.targets import find_block_targets, linear_shape, resolve_modules

if TYPE_CHECKING:
    import peft

    from gelora.profile import Profile

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
        """Raise GeloraError unless ``model`` has every planned module, at the planned shapes.

        A plan from another model fails: one with other module names, and one of the same depth and names whose
        layers have other widths (its ranks were planned for, and would cost, other parameter counts).
        """
        found = resolve_modules(model, [m for b in self.blocks for m in b.modules])
        missing = [name for name, module in found.items() if module is None]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise GeloraError(
                f"this plan was made for {self.model!r}; {type(model).__name__} lacks its module(s) {shown}; "
                "make a plan for this model with `gelora plan --model ...`"
            )
        cost = lora_param_count(model, {m: b.rank for b in self.blocks for m in b.modules})
        if cost != self.total_params:
            raise GeloraError(
                f"this plan's ranks cost {self.total_params:,} LoRA parameters on {self.model!r} and {cost:,} on "
                "this model: it was made for a model with other layer shapes (or edited by hand); make a plan for "
                "this model with `gelora plan --model ...`"
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


def _scale_to_budget(shape: list[int], costs: list[int], budget: int, min_rank: int, caps: list[int]) -> list[int]:
    """Integer ranks proportional to ``shape``, each within [min_rank, cap] where shape > 0, with
    sum(r * cost) ~= budget.

    The scale s solves sum(cost_i * clip(s * shape_i, min_rank, cap_i)) = budget (continuous and non-decreasing in
    s): blocks scaling would push below min_rank are held there, blocks it would push past their cap are held at
    the cap, and the others share what is left in proportion to their shape.
    """
    active = [s > 0 for s in shape]

    def exact(scale: float) -> list[float]:
        return [min(max(scale * s, min_rank), c) if a else 0.0 for s, c, a in zip(shape, caps, active)]

    def spent(scale: float) -> float:
        return sum(r * c for r, c in zip(exact(scale), costs)) - budget

    if spent(0.0) > 0:
        raise GeloraError(f"a budget of {budget:,} parameters cannot give every block min_rank {min_rank}")
    full = max(c / s for s, c, a in zip(shape, caps, active) if a)  # every block at its cap from here on
    values = exact(full if spent(full) <= 0 else brentq(spent, 0.0, full))
    ranks = [math.floor(v) for v in values]
    left = budget - sum(r * c for r, c in zip(ranks, costs))
    # Largest remainder, in parameters: a block gets one more rank while that brings the total closer to the budget.
    for i in sorted(range(len(shape)), key=lambda i: values[i] - ranks[i], reverse=True):
        if active[i] and ranks[i] < caps[i] and left >= costs[i] / 2:
            ranks[i] += 1
            left -= costs[i]
    return ranks


def _shape(lbs: list[int], options: PlanOptions) -> list[int]:
    return [max(lb + options.offset, options.min_rank) for lb in lbs]


def _apply_rule(lbs: list[int], options: PlanOptions, costs: list[int], caps: list[int]) -> list[int]:
    shape = _shape(lbs, options)
    if options.rule == "lower-bound" or not any(shape):  # an all-zero shape has nowhere to put a budget
        return [min(r, c) for r, c in zip(shape, caps)]
    return _scale_to_budget(shape, costs, options.budget_rank * sum(costs), options.min_rank, caps)


def _model_name(model: nn.Module, given: str | None = None) -> str:
    """``given``, else the model's ``name_or_path``; a TypeError when ``model`` is not a loaded model."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"plans are made for a loaded model, not {model!r}; load it with gelora.models.load_backbone(name)"
        )
    return given or getattr(model, "name_or_path", "") or type(model).__name__


@dataclass
class _Blocks:
    """Target modules per block, their LoRA parameters per unit of rank, and the largest useful rank per block."""

    targets: list[list[str]]
    costs: list[int]
    caps: list[int]
    narrowest: list[str]  # the module behind each cap

    def check_rank(self, rank: int, option: str) -> None:
        """Raise if some block cannot take ``rank``: a LoRA rank above min(in, out) adds parameters, not rank."""
        i = min(range(len(self.caps)), key=self.caps.__getitem__)
        if rank > self.caps[i]:
            raise GeloraError(
                f"{option} {rank} is above the largest rank block {i} can use: {self.caps[i]} = min(in, out) of "
                f"{self.narrowest[i]}; use {option} {self.caps[i]} or less"
            )


def _block_targets(model: nn.Module, target_modules) -> _Blocks:
    targets = find_block_targets(model, target_modules)
    found = resolve_modules(model, [m for block in targets for m in block])
    shapes = {name: linear_shape(module) for name, module in found.items()}
    narrowest = [min(block, key=lambda m: min(shapes[m])) for block in targets]
    return _Blocks(
        targets=targets,
        costs=[sum(sum(shapes[m]) for m in block) for block in targets],
        caps=[min(shapes[m]) for m in narrowest],
        narrowest=narrowest,
    )


def _plan_options(options: PlanOptions | None, settings: dict) -> PlanOptions:
    """``options`` (default: PlanOptions()) updated by ``settings`` (PlanOptions fields by keyword), validated."""
    if options is not None and not isinstance(options, PlanOptions):
        raise TypeError(f"options must be a gelora.options.PlanOptions, not {type(options).__name__}")
    options = dataclasses.replace(options or PlanOptions(), **settings)
    if options.rule not in RULES:
        raise GeloraError(f"unknown rule {options.rule!r}; choose one of {', '.join(RULES)}")
    options.validate()
    return options


def _cap_notes(shape: list[int], ranks: list[int], blocks: _Blocks, rule: str) -> list[str]:
    """One note per block whose rank stopped at its cap."""
    def cap(i: int) -> str:
        return f"block {i}: rank capped at {blocks.caps[i]} = min(in, out) of {blocks.narrowest[i]}"

    if rule == "budget":
        return [f"{cap(i)}; the other blocks took the parameters it could not"
                for i, (r, c) in enumerate(zip(ranks, blocks.caps)) if r == c]
    return [f"{cap(i)} (the rule asked for {want})" for i, (want, c) in enumerate(zip(shape, blocks.caps)) if want > c]


def plan_ranks(
    profile: "Profile",
    model: nn.Module,
    options: PlanOptions | None = None,
    *,
    target_modules: list[str] | None = None,
    model_name: str | None = None,
    **settings,
) -> RankPlan:
    """Ranks per block of ``model`` from ``profile`` (see the module docstring for the rules and the caps).

    Parameters
    ----------
    profile : Profile
        Must have one boundary more than the model has blocks, and (when recorded) the model's architecture.
    model : torch.nn.Module
        The loaded model to plan for (``gelora.models.load_backbone(profile.model)`` loads the profiled one).
    options : PlanOptions, optional
        ``rule``, ``offset``, ``min_rank``, ``budget_rank`` (default: ``PlanOptions()``: the lower-bound rule,
        ``r_i = max(lb_i + 1, 1)``).
    target_modules : list of str, optional
        Module-name suffixes inside each block; default: all its linear layers.
    model_name : str, optional
        Recorded in the plan (default: the model's ``name_or_path``).
    **settings
        PlanOptions fields by keyword (``rule="budget", budget_rank=8``), overriding ``options``.

    Raises
    ------
    GeloraError
        Bad or contradictory settings (``budget_rank`` without the budget rule), a rank no block can use, or a
        profile of another architecture or depth.
    """
    from gelora.profile import check_architecture

    options = _plan_options(options, settings)
    name = _model_name(model, model_name)
    check_architecture(profile, model, name)
    blocks = _block_targets(model, target_modules)
    if len(blocks.targets) != profile.num_blocks:
        raise GeloraError(
            f"the profile has {len(profile.boundaries)} boundaries ({profile.num_blocks} blocks, model "
            f"{profile.model!r}) but {name!r} has {len(blocks.targets)} blocks; profile this model first"
        )
    blocks.check_rank(options.min_rank, "--min-rank")
    blocks.check_rank(options.offset, "--offset")
    lbs, ci_lbs, notes = lower_bounds(profile)
    params = {"offset": options.offset, "min_rank": options.min_rank}
    budget = None
    if options.rule == "budget":
        blocks.check_rank(options.budget_rank, "--budget-rank")
        budget = options.budget_rank * sum(blocks.costs)
        params.update(budget_rank=options.budget_rank, budget_params=budget)
    ranks = _apply_rule(lbs, options, blocks.costs, blocks.caps)
    if options.rule == "budget" and not any(ranks):
        raise GeloraError("every block has rank 0 under this profile; the budget rule needs --offset >= 1 or --min-rank")
    notes += _cap_notes(_shape(lbs, options), ranks, blocks, options.rule)
    total = sum(r * c for r, c in zip(ranks, blocks.costs))
    if budget:
        notes.append(
            f"budget: {total:,} parameters vs {budget:,} for uniform rank {options.budget_rank} ({total / budget - 1:+.2%})"
        )
    return RankPlan(
        blocks=[BlockPlan(i, lb, r, mods) for i, (lb, r, mods) in enumerate(zip(lbs, ranks, blocks.targets))],
        rule=options.rule,
        params=params,
        model=name,
        total_params=total,
        fan_in_fan_out=_is_conv1d_plan(model, blocks.targets),
        ci_ranks={k: _apply_rule(v, options, blocks.costs, blocks.caps) for k, v in ci_lbs.items()},
        notes=notes,
    )


def uniform_plan(model: nn.Module, rank: int, target_modules: list[str] | None = None) -> RankPlan:
    """Uniform LoRA of ``rank`` on the same modules a GeLoRA plan would adapt: the baseline to compare against."""
    if rank < 1:
        raise GeloraError(f"uniform rank must be >= 1, got {rank}")
    name = _model_name(model)
    blocks = _block_targets(model, target_modules)
    blocks.check_rank(rank, "--rank")
    return RankPlan(
        blocks=[BlockPlan(i, None, rank, mods) for i, mods in enumerate(blocks.targets)],
        rule="uniform",
        params={"rank": rank},
        model=name,
        total_params=rank * sum(blocks.costs),
        fan_in_fan_out=_is_conv1d_plan(model, blocks.targets),
    )
