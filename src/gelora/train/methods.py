"""Build the model to train for each method: full, lora, gelora (planned ranks), adalora and eva (both via PEFT)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gelora.errors import GeloraError
from gelora.models import load_classifier
from gelora.plan import RankPlan, plan_ranks, uniform_plan
from gelora.plan.rank_plan import DEFAULT_ALPHA_RATIO
from gelora.train.config import PLANNED_METHODS, TrainConfig
from gelora.train.tasks import TaskData, input_loader

PLAN_FILE = "plan.json"
PROFILE_FILE = "profile.json"


@dataclass
class BuiltModel:
    """The model to train, what to call after each optimizer step, and facts for metrics.json.

    ``checkpoint_state`` lists extra objects (with ``state_dict``/``load_state_dict``) that a checkpoint must hold
    for an exact resume, e.g. AdaLoRA's importance scores. ``integrator`` is GeoLoRA's, which needs the optimizer
    and hooks on both sides of its step.
    """

    model: torch.nn.Module
    info: dict[str, Any] = field(default_factory=dict)
    after_step: Callable[[torch.nn.Module, int], None] | None = None
    checkpoint_state: list[Any] = field(default_factory=list)
    integrator: Any = None


def build_model(config: TrainConfig, data: TaskData, tokenizer, total_steps: int, accelerator) -> BuiltModel:
    """The model for ``config.method``, with its adapter attached and initialised (EVA's SVD pass included)."""
    base = load_classifier(config.model, data.spec.num_labels)
    if config.method == "full":
        return BuiltModel(base)
    if config.method == "adalora":
        return _adalora(config, base, total_steps)
    profile, info = None, {}
    if config.method in PLANNED_METHODS:
        plan, profile, info = _gelora_plan(config, base, data, tokenizer, accelerator)
    else:
        plan = uniform_plan(base, config.rank, config.target_modules)
    _check_plan(plan, base)
    if accelerator.is_main_process:
        plan.to_json(Path(config.out) / PLAN_FILE)
        if profile is not None:
            profile.to_json(Path(config.out) / PROFILE_FILE)
    if config.method == "eva":
        return _eva(config, base, plan, data, accelerator)
    if config.method in ("geolora", "gelora-geolora"):
        return _geolora(config, base, plan, info)
    from peft import get_peft_model

    lora = plan.to_lora_config(
        task_type="SEQ_CLS", lora_dropout=config.lora_dropout, modules_to_save=head_modules(base), **_alpha(config)
    )
    return BuiltModel(get_peft_model(base, lora), info)


def _alpha(config: TrainConfig) -> dict[str, float]:
    """A fixed ``lora_alpha`` when given; otherwise the plan's default, alpha = 2 r in every module."""
    return {} if config.lora_alpha is None else {"lora_alpha": config.lora_alpha}


def _check_plan(plan, base) -> None:
    plan.check_model(base)
    if not plan.ranks_by_module():
        raise GeloraError(
            "the plan gives rank 0 to every block, so there is nothing to train; "
            "lower --offset or raise --min-rank (or use --rule budget), or use --method lora"
        )


def _gelora_plan(config: TrainConfig, base, data: TaskData, tokenizer, accelerator):
    """A given plan.json, the plan of the run being resumed, or a fresh one (and its profile) from the task's texts."""
    from gelora.profile import profile_model

    saved = Path(config.out) / PLAN_FILE
    if config.plan is not None or (config.resume and saved.exists()):
        return RankPlan.from_json(config.plan or saved), None, {"plan_source": str(config.plan or saved)}
    opts = config.plan_options
    start = time.perf_counter()
    profile = profile_model(
        base.to(accelerator.device),
        tokenizer,
        data.train_texts,
        pooling=opts.pooling,
        estimator=opts.estimator,
        bootstrap=opts.bootstrap,
        seed=config.seed,
        num_samples=opts.num_samples,
        max_length=config.max_length,
        batch_size=config.batch_size,
        progress=config.progress and accelerator.is_main_process,
        model_name=config.model,
        data={"task": config.task, "split": "train"},
    )
    profiled = time.perf_counter()
    plan = plan_ranks(
        profile,
        base,
        rule=opts.rule,
        offset=opts.offset,
        min_rank=opts.min_rank,
        budget_rank=opts.budget_rank,
        target_modules=config.target_modules,
    )
    info = {
        "plan_source": "profiled",
        "profile_seconds": profiled - start,
        "plan_seconds": time.perf_counter() - profiled,
    }
    return plan, profile, info


def _adalora(config: TrainConfig, base, total_steps: int) -> BuiltModel:
    """AdaLoRA with the same average final rank (``target_r = R``) on the same modules as LoRA."""
    from peft import AdaLoraConfig, get_peft_model

    targets = list(uniform_plan(base, config.rank, config.target_modules).ranks_by_module())
    # Warm up on 10% of the steps, hold the final ranks for the last 20%, reallocate every ~1% in between.
    tinit, tfinal = total_steps // 10, total_steps // 5
    schedule = {"tinit": tinit, "tfinal": tfinal, "deltaT": max(1, (total_steps - tinit - tfinal) // 100)}
    ada = AdaLoraConfig(
        task_type="SEQ_CLS",
        target_modules=targets,
        init_r=round(1.5 * config.rank),
        target_r=config.rank,
        total_step=total_steps,
        orth_reg_weight=config.adalora_orth_reg_weight,
        lora_alpha=config.lora_alpha if config.lora_alpha is not None else DEFAULT_ALPHA_RATIO * config.rank,
        lora_dropout=config.lora_dropout,
        modules_to_save=head_modules(base),
        **schedule,
    )
    model = get_peft_model(base, ada)

    def after_step(trained: torch.nn.Module, step: int) -> None:
        # Needs this step's gradients: after backward and the optimizer step, before zero_grad.
        trained.base_model.update_and_allocate(step)

    return BuiltModel(model, {"adalora": schedule}, after_step, [AdaLoraBudgetState(model)])


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


def _geolora(config: TrainConfig, base, plan: RankPlan, info: dict[str, Any]) -> BuiltModel:
    """GeoLoRA on the plan's modules, starting from its ranks (uniform R, or GeLoRA's per-block ranks)."""
    from gelora.geolora import GeoLoRAConfig, GeoLoRAIntegrator, apply_geolora

    start = plan.ranks_by_module()
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
        modules_to_save=head_modules(base),
        seed=config.seed,
    )
    model = apply_geolora(base, geo)
    integrator = GeoLoRAIntegrator(model)  # the runner hands it the optimizer
    return BuiltModel(model, info | {"geolora": geo.to_dict()}, checkpoint_state=[integrator], integrator=integrator)


def head_modules(model: torch.nn.Module) -> list[str]:
    """The task head, trained in full by every adapter method: the model's top-level children with parameters
    other than the pretrained backbone, plus the backbone's pooler when it has one.

    BERT-family classifiers read ``tanh(W h_[CLS])`` from the backbone's pooler: that dense layer is the head's
    first layer (RoBERTa and DeBERTa keep theirs inside the head), and checkpoints trained without it, such as
    sentence-transformers' all-MiniLM-L6-v2, carry one that was never trained for the task. Left frozen, it
    cost LoRA most of STS-B (Pearson 0.17 vs 0.87 with it trained; benchmarks/RESULTS.md).
    """
    backbone = getattr(model, "base_model_prefix", "")
    heads = [n for n, m in model.named_children() if n != backbone and any(True for _ in m.parameters())]
    pooler = getattr(getattr(model, backbone, None), "pooler", None)
    if isinstance(pooler, torch.nn.Module) and any(True for _ in pooler.parameters()):
        heads.append(f"{backbone}.pooler")
    return heads


def _eva(config: TrainConfig, base, plan, data: TaskData, accelerator) -> BuiltModel:
    """LoRA initialised from the SVD of the task's layer inputs; EVA moves rank between modules (up to rho * R)."""
    from peft import EvaConfig, get_peft_model, initialize_lora_eva_weights

    lora = plan.to_lora_config(
        task_type="SEQ_CLS",
        lora_dropout=config.lora_dropout,
        **_alpha(config),
        modules_to_save=head_modules(base),
        init_lora_weights="eva",
        # Classification inputs carry no token labels to mask out.
        eva_config=EvaConfig(rho=config.eva_rho, use_label_mask=False),
    )
    # The SVD pass runs on the training device; adapter weights stay empty (meta) until EVA fills them.
    model = get_peft_model(base.to(accelerator.device), lora, low_cpu_mem_usage=True)
    inputs = input_loader(data, config.batch_size, accelerator.process_index, accelerator.num_processes)
    start = time.perf_counter()
    initialize_lora_eva_weights(model, inputs, show_progress_bar=False)
    return BuiltModel(model, {"eva_seconds": time.perf_counter() - start, "eva_rho": config.eva_rho})


def adapter_ranks(model: torch.nn.Module) -> dict[str, int]:
    """Rank of every adapted module as trained: LoRA's r, or AdaLoRA's count of singular values still alive."""
    from gelora.geolora import GeoLoRALinear

    ranks = {}
    for name, module in model.named_modules():
        key = name.removeprefix("base_model.model.")
        if isinstance(module, GeoLoRALinear):
            ranks[key] = module.r
        elif hasattr(module, "lora_E") and "default" in module.lora_E:
            ranks[key] = int((module.lora_E["default"] != 0).sum())
        elif hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            ranks[key] = module.lora_A["default"].weight.shape[0]
    return ranks
