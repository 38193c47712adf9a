"""Method specs for ``gelora bench``: ``NAME[:KEY=VALUE,...]``, e.g. ``lora``, ``gelora-lb``, ``gelora:pooling=mean``.

``NAME`` is any method the training runner knows (``gelora.train.config.METHODS``), so a method added there is
benchmarkable without a change here, or an alias below that presets options. ``KEY=VALUE`` options:

``rank=R`` (every method)
    The rank to use instead of ``--budget-rank`` (LoRA / EVA rank, AdaLoRA's average final rank, GeLoRA's budget).
``lr=X`` (every method)
    The learning rate instead of ``--lr`` (e.g. ``full:lr=5e-5`` next to a large adapter ``--lr``).
``rule``, ``pooling``, ``offset``, ``min_rank``, ``estimator``, ``num_samples`` (``gelora``, ``gelora-geolora``)
    How the bench profiles the model and plans the ranks (see ``gelora.plan.plan_ranks``). The bench's GeLoRA
    default is ``rule=budget`` at ``--budget-rank``: the same trainable parameters as uniform LoRA.

The label (table row, run folder) is the name as given plus the options given, sorted: ``gelora:offset=2,pooling=mean``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from gelora.errors import GeloraError
from gelora.train.config import PLANNED_METHODS  # trained from GeLoRA's plan: the bench plans once per task

GELORA = "gelora"

# Alias -> (runner method, preset options).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "gelora-lb": (GELORA, {"rule": "lower-bound"}),
}

# Options that shape GeLoRA's profile and plan, with the bench's defaults (num_samples: --profile-samples).
PROFILE_OPTIONS: dict[str, Any] = {"pooling": "tokens", "estimator": "twonn"}
PLAN_OPTIONS: dict[str, Any] = {"rule": "budget", "offset": 1, "min_rank": 1}
GELORA_OPTIONS = (*PROFILE_OPTIONS, "num_samples", *PLAN_OPTIONS)
COMMON_OPTIONS = ("rank", "lr")
INT_OPTIONS = {"rank": 1, "num_samples": 1, "offset": 0, "min_rank": 0}  # name -> smallest value


def _choices() -> dict[str, tuple[str, ...]]:
    from gelora.measure import ESTIMATORS
    from gelora.measure.hidden_states import POOLINGS
    from gelora.plan import RULES

    return {"pooling": POOLINGS, "estimator": tuple(ESTIMATORS), "rule": RULES}

DEFAULT_METHODS = ("lora", "gelora", "gelora-lb", "adalora", "eva", "full")


def runner_methods() -> tuple[str, ...]:
    """The methods the training runner can train (its list is the source of truth)."""
    from gelora.train.config import METHODS

    return tuple(METHODS)


@dataclass(frozen=True)
class MethodSpec:
    """One benchmarked method: the runner ``method``, its ``options``, and the ``label`` it is reported under."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_gelora(self) -> bool:
        """Trained from GeLoRA's plan (GeLoRA itself, or GeoLoRA started at the planned ranks)."""
        return self.method in PLANNED_METHODS

    @property
    def folder(self) -> str:
        """The label as a folder name (``:`` and ``,`` become ``_``)."""
        return re.sub(r"[^\w.=+-]+", "_", self.label)

    def rank(self, budget_rank: int) -> int:
        return int(self.options.get("rank", budget_rank))

    def lr(self, default: float | None) -> float | None:
        return self.options.get("lr", default)

    def profile_options(self, num_samples: int) -> dict[str, Any]:
        """What the profile depends on: GeLoRA variants that agree on it share one profile of the task."""
        options = {k: self.options.get(k, v) for k, v in PROFILE_OPTIONS.items()}
        return options | {"num_samples": self.options.get("num_samples", num_samples)}

    def plan_options(self, budget_rank: int) -> dict[str, Any]:
        """How the plan turns the profile into ranks."""
        options = {k: self.options.get(k, v) for k, v in PLAN_OPTIONS.items()}
        return options | {"budget_rank": self.rank(budget_rank) if options["rule"] == "budget" else None}


def parse_method(text: str, known: tuple[str, ...] | None = None) -> MethodSpec:
    """Parse ``NAME[:KEY=VALUE,...]``; ``known`` defaults to the runner's methods."""
    known = runner_methods() if known is None else known
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    method, preset = ALIASES.get(name, (name, {}))
    if method not in known:
        choices = ", ".join([*known, *ALIASES])
        raise GeloraError(f"unknown method {name!r} in --methods; choose from {choices} (options: NAME:KEY=VALUE,...)")
    allowed = COMMON_OPTIONS + (GELORA_OPTIONS if method in PLANNED_METHODS else ())
    given: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not value.strip():
            raise GeloraError(f"method option {item!r} in {text!r} needs the form KEY=VALUE, e.g. {name}:rank=4")
        if key not in allowed:
            raise GeloraError(f"method {name!r} has no option {key!r}; it takes: {', '.join(allowed)}")
        given[key] = _convert(key, value.strip(), text)
    label = name + (":" + ",".join(f"{k}={given[k]}" for k in sorted(given)) if given else "")
    return MethodSpec(label, method, preset | given)


def _convert(key: str, value: str, text: str) -> Any:
    if key == "lr":
        try:
            lr = float(value)
        except ValueError:
            lr = math.nan
        if not lr > 0:
            raise GeloraError(f"option lr in {text!r} must be a positive number, got {value!r}")
        return lr
    if key not in INT_OPTIONS:
        choices = _choices()[key]
        if value not in choices:
            raise GeloraError(f"option {key} in {text!r} must be one of {', '.join(choices)}, got {value!r}")
        return value
    try:
        number = int(value)
    except ValueError:
        raise GeloraError(f"option {key} in {text!r} must be an integer, got {value!r}") from None
    if number < INT_OPTIONS[key]:
        raise GeloraError(f"option {key} in {text!r} must be >= {INT_OPTIONS[key]}, got {number}")
    return number


def parse_methods(text: str, known: tuple[str, ...] | None = None) -> list[MethodSpec]:
    """Parse ``--methods``: specs separated by ``;`` or by ``,`` before a new method name.

    Commas separate both methods and options, so ``lora,gelora:offset=2,pooling=mean,eva`` reads as three methods:
    an item with ``=`` continues the options of the method before it.
    """
    items: list[str] = []
    for part in filter(None, (p.strip() for p in re.split(r"[;,]", text))):
        if "=" in part and ":" not in part and items and ":" in items[-1]:
            items[-1] += "," + part
        else:
            items.append(part)
    if not items:
        raise GeloraError("--methods is empty; give e.g. lora,gelora,gelora-lb,adalora,eva,full")
    specs = [parse_method(item, known) for item in items]
    labels = [s.label for s in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise GeloraError(f"--methods lists {', '.join(duplicates)} more than once; give each method once")
    return specs
