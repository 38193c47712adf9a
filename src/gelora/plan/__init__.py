"""From an ID profile to LoRA ranks per block, and to a PEFT ``LoraConfig``."""

from gelora.plan.rank_plan import (
    RULES,
    BlockPlan,
    RankPlan,
    lora_param_count,
    lower_bounds,
    plan_ranks,
    uniform_plan,
)
from gelora.plan.targets import find_block_targets, find_blocks

__all__ = [
    "RULES",
    "BlockPlan",
    "RankPlan",
    "find_block_targets",
    "find_blocks",
    "lora_param_count",
    "lower_bounds",
    "plan_ranks",
    "uniform_plan",
]
