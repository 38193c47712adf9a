"""GeLoRA: LoRA whose per-block ranks come from the intrinsic-dimension profile of the model on the task's texts."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from gelora.options import PlanOptions, ProfileOptions
from gelora.plan import RankPlan
from gelora.profile import Profile
from gelora.train.methods.base import BuildContext
from gelora.train.methods.lora import PLAN_FILE, LoRA

PROFILE_FILE = "profile.json"


def timed_profile(
    model: torch.nn.Module,
    tokenizer,
    texts: list[tuple[str, ...]],
    options: ProfileOptions,
    *,
    seed: int,
    max_length: int,
    batch_size: int = 32,
    progress: bool = False,
    model_name: str | None = None,
    data: dict | None = None,
) -> tuple[Profile, float]:
    """The ID profile of ``model`` (where it is: move it to the device first) on ``texts``, and its seconds."""
    from gelora.profile import profile_model

    start = time.perf_counter()
    result = profile_model(model, tokenizer, texts, options, seed=seed, max_length=max_length, batch_size=batch_size,
                           progress=progress, model_name=model_name, data=data)
    return result, time.perf_counter() - start


def plan_from_profile(
    profile: Profile, model: torch.nn.Module, options: PlanOptions, target_modules: list[str] | None = None
) -> tuple[RankPlan, float]:
    """The ranks ``options`` give ``model`` from ``profile``, and the seconds it took."""
    from gelora.plan import plan_ranks

    start = time.perf_counter()
    result = plan_ranks(profile, model, options, target_modules=target_modules)
    return result, time.perf_counter() - start


class GeLoRA(LoRA):
    """PEFT LoRA at the ranks of a GeLoRA plan: ``--plan FILE``, the resumed run's plan, or profiled now."""

    name = "gelora"
    outputs = (*LoRA.outputs, PROFILE_FILE)
    uses_rank = False
    uses_plan = True

    def plan(self, base: torch.nn.Module, ctx: BuildContext) -> RankPlan:
        config = self.config
        saved = Path(config.out) / PLAN_FILE
        if config.plan is not None or (config.resume and saved.exists()):
            self.info["plan_source"] = str(config.plan or saved)
            return RankPlan.from_json(config.plan or saved)
        found, profile_seconds = timed_profile(
            base.to(ctx.accelerator.device),
            ctx.tokenizer,
            ctx.data.profile_texts,
            config.profile_options,
            seed=config.seed,
            max_length=config.max_length,
            batch_size=config.batch_size,
            progress=config.progress and ctx.accelerator.is_main_process,
            model_name=config.model,
            data={"task": ctx.task.name, "split": "train"},
        )
        ranks, plan_seconds = plan_from_profile(found, base, config.plan_options, config.target_modules)
        if ctx.accelerator.is_main_process:
            found.to_json(Path(config.out) / PROFILE_FILE)
        self.info.update(plan_source="profiled", profile_seconds=profile_seconds, plan_seconds=plan_seconds)
        return ranks
