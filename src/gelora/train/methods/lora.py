"""LoRA through PEFT: rank R on every adapted module (the baseline every plan is compared with)."""

from __future__ import annotations

from pathlib import Path

import torch

from gelora.errors import GeloraError
from gelora.plan import RankPlan, uniform_plan
from gelora.train.methods.base import BuildContext, Method

PLAN_FILE = "plan.json"


class LoRA(Method):
    """PEFT LoRA with the ranks of ``plan`` (uniform here; subclasses plan otherwise) and the task head trained."""

    name = "lora"
    outputs = (PLAN_FILE,)

    def plan(self, base: torch.nn.Module, ctx: BuildContext) -> RankPlan:
        return uniform_plan(base, self.config.lora_rank, self.config.target_modules)

    def build(self, base: torch.nn.Module, ctx: BuildContext) -> torch.nn.Module:
        from peft import get_peft_model

        return get_peft_model(base, self.lora_config(self.checked_plan(base, ctx), base, ctx))

    def checked_plan(self, base: torch.nn.Module, ctx: BuildContext) -> RankPlan:
        """The plan, checked against the model and saved as ``plan.json`` in the run folder."""
        plan = self.plan(base, ctx)
        if not plan.ranks_by_module():
            raise GeloraError(
                "the plan gives rank 0 to every block, so there is nothing to train; "
                "lower --offset or raise --min-rank (or use --rule budget), or use --method lora"
            )
        plan.check_model(base)
        if ctx.accelerator.is_main_process:
            plan.to_json(Path(self.config.out) / PLAN_FILE)
        return plan

    def lora_config(self, plan: RankPlan, base: torch.nn.Module, ctx: BuildContext, **extra):
        """PEFT's config for ``plan``: alpha = 2 r per module unless ``--lora-alpha`` fixes it."""
        fixed = {} if self.config.lora_alpha is None else {"lora_alpha": self.config.lora_alpha}
        return plan.to_lora_config(
            task_type=ctx.task.peft_task_type,
            lora_dropout=self.config.lora_dropout,
            modules_to_save=ctx.task.head_modules(base) or None,
            **fixed,
            **extra,
        )

    def ranks(self, model: torch.nn.Module) -> dict[str, int]:
        return {
            name.removeprefix("base_model.model."): module.lora_A["default"].weight.shape[0]
            for name, module in model.named_modules()
            if "default" in getattr(module, "lora_A", {})
        }
