"""What a fine-tuning method is: build the model to train, hook into the optimizer step, save what it trained.

A method is one ``Method`` subclass in its own module and one line in ``gelora.train.methods.METHODS``. The runner
drives every method through this interface and never names one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from gelora.errors import GeloraError, flag, ignored_options

if TYPE_CHECKING:
    from gelora.train.config import TrainConfig
    from gelora.train.tasks import Task, TaskData

DEFAULT_ADAPTER_LR = 5e-4  # adapters tolerate (and need) far larger steps than full fine-tuning
# TrainConfig fields that only some methods read; a method refuses those it would ignore (``uses_options``).
METHOD_OPTIONS = ("lora_alpha", "lora_dropout", "target_modules", "eva_rho", "adalora_orth_reg_weight", "geolora_tau",
                  "geolora_r_max", "geolora_augment_every", "geolora_lr", "geolora_scaling")


@dataclass
class BuildContext:
    """What a method may use to build its model: the run's settings, task, data, tokenizer and devices."""

    config: TrainConfig
    task: Task
    data: TaskData
    tokenizer: Any
    accelerator: Any
    total_steps: int


class Method:
    """One way to fine-tune. Subclasses implement ``build``; the other hooks default to plain gradient training.

    Class attributes
    ----------------
    name : str
        What ``--method`` calls it.
    uses_rank, uses_plan : bool
        Whether ``--rank`` applies, and whether the ranks come from a GeLoRA profile and plan (``--plan`` and the
        profile and plan options apply; the bench plans once per task for such methods).
    default_lr : float
        The learning rate when ``--lr`` is not given.
    output : str
        The folder in ``--out`` that ``save`` writes (``adapter``, or ``model`` for full fine-tuning).
    uses_options : frozenset of str
        The method-specific ``TrainConfig`` fields (``METHOD_OPTIONS``) this method reads.
    outputs : tuple of str
        What else the method writes into ``--out`` (``--overwrite`` removes it with the rest of the run).
    length_info : tuple of str
        Keys of ``info`` that follow the run's length (a schedule): a run continued for more steps records this
        session's, where the rest of ``info`` stays the first session's (e.g. the profiling time).
    """

    name: ClassVar[str]
    uses_rank: ClassVar[bool] = True
    uses_plan: ClassVar[bool] = False
    uses_options: ClassVar[frozenset[str]] = frozenset({"lora_alpha", "lora_dropout", "target_modules"})
    outputs: ClassVar[tuple[str, ...]] = ()
    length_info: ClassVar[tuple[str, ...]] = ()
    default_lr: ClassVar[float] = DEFAULT_ADAPTER_LR
    output: ClassVar[str] = "adapter"

    def __init__(self, config: TrainConfig):
        self.config = config
        self.info: dict[str, Any] = {}  # facts for metrics.json (plan source, profiling time, ...)

    @classmethod
    def validate(cls, config: TrainConfig) -> None:
        """Refuse settings this method would silently ignore; called before anything is loaded."""
        from gelora.options import PlanOptions, ProfileOptions

        if config.rank is not None and not cls.uses_rank:
            fix = "its ranks come from the plan (use --rule budget --budget-rank R)" if cls.uses_plan else "drop it"
            raise GeloraError(f"--rank does not apply to --method {cls.name}: {fix}")
        if config.plan is not None and not cls.uses_plan:
            raise GeloraError(f"--plan only applies to methods that train a GeLoRA plan, not {cls.name}; drop --plan")
        planning = _changed(config.plan_options, PlanOptions()) + _changed(config.profile_options, ProfileOptions())
        if planning and not cls.uses_plan:
            raise GeloraError(f"{', '.join(planning)} (profile and plan options) only apply to methods that train a "
                              f"GeLoRA plan, not {cls.name}; drop them")
        if planning and config.plan is not None:
            raise GeloraError("--plan gives the ranks, so profile and plan options would be ignored; drop them")
        if config.plan is not None and config.target_modules is not None:
            raise GeloraError("--plan fixes the adapted modules, so --target-modules would be ignored; drop it")
        defaults = {name: type(config).__dataclass_fields__[name].default for name in METHOD_OPTIONS}
        ignored = [name for name in METHOD_OPTIONS if name not in cls.uses_options
                   and getattr(config, name) != defaults[name]]
        if ignored:
            raise ignored_options(ignored, f"--method {cls.name}")
        if config.plan is not None:
            from gelora.plan import RankPlan

            RankPlan.from_json(config.plan)  # a missing or unreadable plan fails now, before the model loads

    def build(self, base: torch.nn.Module, ctx: BuildContext) -> torch.nn.Module:
        """The model to train, made from the task's pretrained ``base`` model."""
        raise NotImplementedError

    def attach(self, model: torch.nn.Module, optimizer) -> None:
        """Called once the model and optimizer are prepared (wrapped) for training."""

    def checkpoint_state(self) -> list[Any]:
        """Objects with ``state_dict``/``load_state_dict`` a checkpoint must hold for an exact resume."""
        return []

    def checkpoint_keeps(self, model: torch.nn.Module) -> tuple[str, ...]:
        """Prefixes of state entries to checkpoint besides trainable parameters (state that changes in training)."""
        return ()

    def after_clipping(self, factor: float) -> None:
        """Gradients were scaled by ``factor`` when clipped (for gradients the optimizer does not hold)."""

    def before_optimizer_step(self) -> None:
        pass

    def after_optimizer_step(self, model: torch.nn.Module, step: int) -> None:
        """After the optimizer step, while this step's gradients still exist."""

    def trainable_parameter_count(self, model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def ranks(self, model: torch.nn.Module) -> dict[str, int]:
        """Rank of every adapted module as trained (empty for full fine-tuning)."""
        return {}

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        """Write what was trained, in the ecosystem's format (``PeftModel.from_pretrained`` opens an adapter)."""
        model.save_pretrained(folder)

    def finish(self, out: Path) -> None:
        """Write method-specific outputs into ``out`` (main process, after training)."""

    def tracked(self, model: torch.nn.Module) -> dict[str, float]:
        """Values for experiment trackers at each evaluation (e.g. GeoLoRA's total rank)."""
        return {}


def _changed(options, defaults) -> list[str]:
    """The flags of the ``options`` dataclass fields set to something other than ``defaults``."""
    return [flag(f.name) for f in dataclasses.fields(options)
            if getattr(options, f.name) != getattr(defaults, f.name)]
