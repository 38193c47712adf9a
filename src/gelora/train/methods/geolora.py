"""GeoLoRA (``gelora.geolora``) as a training method: ranks that adapt while training, exported as PEFT LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gelora.plan import RankPlan
from gelora.train.methods.base import BuildContext
from gelora.train.methods.gelora import GeLoRA
from gelora.train.methods.lora import LoRA


class GeoLoRA(LoRA):
    """GeoLoRA on the plan's modules, starting from its ranks (uniform R here)."""

    name = "geolora"
    # GeoLoRA scales by --geolora-scaling, not by LoRA's alpha
    uses_options = frozenset({"lora_dropout", "target_modules", "geolora_tau", "geolora_r_max",
                              "geolora_augment_every", "geolora_lr", "geolora_scaling"})
    outputs = (*LoRA.outputs, "rank_history.json", "rank_history.png")

    def build(self, base: torch.nn.Module, ctx: BuildContext) -> torch.nn.Module:
        from gelora.geolora import GeoLoRAConfig, GeoLoRAIntegrator, apply_geolora
        from gelora.geolora.model import check_linear_layers

        # Before any profiling: GPT-2's Conv1D layers cannot take GeoLoRA.
        check_linear_layers(base, what=f"--method {self.name}", fix="use --method lora or gelora for this model")
        config = self.config
        start = self.checked_plan(base, ctx).ranks_by_module()
        geo = GeoLoRAConfig(
            target_modules=list(start),
            rank_pattern=start,
            r_init=max(start.values()),
            r_max=config.geolora_r_max or 2 * max(start.values()),
            tau=config.geolora_tau,
            augment_every=config.geolora_augment_every,
            geometric_lr=config.geolora_lr,
            scaling=config.geolora_scaling,
            dropout=config.lora_dropout,
            modules_to_save=ctx.task.head_modules(base),
            seed=config.seed,
        )
        model = apply_geolora(base, geo)
        self.task_type = ctx.task.peft_task_type  # of the exported PEFT adapter
        self.integrator = GeoLoRAIntegrator(model)  # gets the optimizer in attach()
        self.info["geolora"] = geo.to_dict()
        return model

    def attach(self, model: torch.nn.Module, optimizer) -> None:
        self.integrator.optimizer = optimizer

    def checkpoint_state(self) -> list[Any]:
        return [self.integrator]

    def checkpoint_keeps(self, model: torch.nn.Module) -> tuple[str, ...]:
        # The bases and ranks are not trained by the optimizer but change every step.
        return tuple(f"{name}." for name in self.integrator.layers)

    def after_clipping(self, factor: float) -> None:
        self.integrator.scale_basis_gradients(factor)

    def before_optimizer_step(self) -> None:
        self.integrator.before_optimizer_step()  # takes S's gradient into the augmented block

    def after_optimizer_step(self, model: torch.nn.Module, step: int) -> None:
        self.integrator.after_optimizer_step()  # augment, step S, truncate: ranks may change

    def trainable_parameter_count(self, model: torch.nn.Module) -> int:
        """At the final ranks (the buffers are sized for r_max)."""
        return self.integrator.trainable_parameter_count()

    def ranks(self, model: torch.nn.Module) -> dict[str, int]:
        return self.integrator.ranks()

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        from gelora.geolora import export_to_peft

        export_to_peft(model, folder, task_type=self.task_type)

    def finish(self, out: Path) -> None:
        from gelora.plots import plot_rank_history

        self.integrator.save_rank_history(out / "rank_history.json")
        plot_rank_history(self.integrator.rank_history, out / "rank_history.png", f"{self.name} on {self.config.task}")

    def tracked(self, model: torch.nn.Module) -> dict[str, float]:
        return {"total_rank": float(sum(self.integrator.ranks().values()))}


class GeLoRAGeoLoRA(GeoLoRA):
    """GeoLoRA started from GeLoRA's planned ranks."""

    name = "gelora-geolora"
    uses_rank = False
    uses_plan = True
    outputs = (*GeoLoRA.outputs, *GeLoRA.outputs)

    def plan(self, base: torch.nn.Module, ctx: BuildContext) -> RankPlan:
        planner = GeLoRA(self.config)
        plan = planner.plan(base, ctx)
        self.info.update(planner.info)
        return plan
