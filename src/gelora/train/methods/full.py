"""Full fine-tuning: every weight trains; the baseline adapters are measured against."""

from __future__ import annotations

import torch

from gelora.train.methods.base import BuildContext, Method


class Full(Method):
    name = "full"
    uses_rank = False
    default_lr = 2e-5
    output = "model"
    uses_options = frozenset()

    def build(self, base: torch.nn.Module, ctx: BuildContext) -> torch.nn.Module:
        return base
