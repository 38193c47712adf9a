"""AdaLoRA through PEFT: SVD-shaped adapters whose ranks are reallocated by importance during training."""

from __future__ import annotations

from typing import Any

import torch

from gelora.plan import uniform_plan
from gelora.plan.rank_plan import DEFAULT_ALPHA_RATIO
from gelora.train.methods.base import BuildContext, Method


class AdaLoRA(Method):
    """The same average final rank (``target_r = R``, from ``init_r = 1.5 R``) on the same modules as LoRA."""

    name = "adalora"
    uses_options = Method.uses_options | {"adalora_orth_reg_weight"}
    length_info = ("adalora",)  # its budget schedule is set from the total steps

    def build(self, base: torch.nn.Module, ctx: BuildContext) -> torch.nn.Module:
        from peft import AdaLoraConfig, get_peft_model

        config, rank, total = self.config, self.config.lora_rank, ctx.total_steps
        targets = list(uniform_plan(base, rank, config.target_modules).ranks_by_module())
        # Warm up on 10% of the steps, hold the final ranks for the last 20%, reallocate every ~1% in between.
        tinit, tfinal = total // 10, total // 5
        schedule = {"tinit": tinit, "tfinal": tfinal, "deltaT": max(1, (total - tinit - tfinal) // 100)}
        ada = AdaLoraConfig(
            task_type=ctx.task.peft_task_type,
            target_modules=targets,
            init_r=round(1.5 * rank),
            target_r=rank,
            total_step=total,
            orth_reg_weight=config.adalora_orth_reg_weight,
            lora_alpha=config.lora_alpha if config.lora_alpha is not None else DEFAULT_ALPHA_RATIO * rank,
            lora_dropout=config.lora_dropout,
            modules_to_save=ctx.task.head_modules(base) or None,
            **schedule,
        )
        self.model = get_peft_model(base, ada)
        self.info["adalora"] = schedule
        return self.model

    def after_optimizer_step(self, model: torch.nn.Module, step: int) -> None:
        # Needs this step's gradients: after backward and the optimizer step, before zero_grad.
        model.base_model.update_and_allocate(step)

    def checkpoint_state(self) -> list[Any]:
        return [AdaLoraBudgetState(self.model)]

    def ranks(self, model: torch.nn.Module) -> dict[str, int]:
        """The singular values still alive in each module."""
        return {
            name.removeprefix("base_model.model."): int((module.lora_E["default"] != 0).sum())
            for name, module in model.named_modules()
            if "default" in getattr(module, "lora_E", {})
        }


class AdaLoraBudgetState:
    """AdaLoRA's importance averages and current rank pattern, so a resumed run reallocates exactly as before."""

    KEYS = ("ipt", "exp_avg_ipt", "exp_avg_unc")

    def __init__(self, model):
        self.model = model

    def state_dict(self) -> dict[str, Any]:
        allocator = self.model.base_model.rankallocator
        state = {k: dict(getattr(allocator, k)) for k in self.KEYS}
        return state | {"rank_pattern": self.model.peft_config["default"].rank_pattern}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        allocator = self.model.base_model.rankallocator
        for k in self.KEYS:
            setattr(allocator, k, dict(state[k]))
        self.model.peft_config["default"].rank_pattern = state["rank_pattern"]
