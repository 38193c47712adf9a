"""``gelora.distributed`` in one process: the identity / no-ops, and unwrapping that trusts wrapper types only."""

from __future__ import annotations

import torch
from torch import nn

from gelora.distributed import average_, broadcast_, gather_objects, unwrap_model


def test_single_process_collectives_are_the_identity():
    t = torch.arange(3.0)
    average_([t])
    broadcast_([t])
    assert gather_objects({"a": 1}) == [{"a": 1}] and t.tolist() == [0.0, 1.0, 2.0]


def test_unwrap_model_removes_wrappers_but_keeps_a_submodule_named_module():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)  # an ordinary child that happens to be called ``module``

    inner = Holder()
    assert unwrap_model(nn.DataParallel(inner)) is inner
    assert unwrap_model(inner) is inner
