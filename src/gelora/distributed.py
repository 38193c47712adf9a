"""Data parallelism on top of ``torch.distributed``, as set up by ``accelerate launch`` or ``torchrun``.

gelora has no engine of its own: Accelerate wraps the model (DDP, or DeepSpeed / FSDP from an accelerate config)
and shards the data loaders. This module holds the few collective operations the rest of gelora needs besides
that, on Accelerate's own (``gather_object``, ``reduce``, ``broadcast``, ``extract_model_from_parallel``):
gathering per-process results in process order, averaging tensors that live outside ``.grad`` (GeoLoRA's
projected basis gradients), broadcasting state that must stay identical (GeoLoRA's factors), and unwrapping a
wrapped model. Every function is a no-op (or the identity) in a single process, so callers need no
``if distributed`` branches.

The process queries read ``torch.distributed`` rather than ``PartialState()``: constructing ``PartialState``
initialises Accelerate's process-wide state (device choice, even the process group under a launcher), which a
library call such as ``profile_model`` must not do behind the user's back; Accelerate's collectives are therefore
only reached when a process group exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def process_index() -> int:
    return dist.get_rank() if is_distributed() else 0


def num_processes() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return process_index() == 0


def launched_without_gpu() -> bool:
    """True when a launcher started several processes on a machine without CUDA.

    Accelerate then joins them only with ``cpu=True`` (``accelerate launch --cpu`` says so through the
    environment; ``torchrun`` does not, and each process would otherwise train alone on all the data).
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def init_from_environment() -> None:
    """Join the process group that ``accelerate launch`` / ``torchrun`` describe in the environment (if any).

    Commands that do not build an ``Accelerator`` (``gelora profile``) call this first; Accelerate's
    ``PartialState`` picks the backend (NCCL on GPUs, gloo on CPU) and the device of this process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not (dist.is_available() and dist.is_initialized()):
        from accelerate import PartialState

        PartialState(cpu=launched_without_gpu())


def gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in process order, on every process."""
    if not is_distributed():
        return [obj]
    from accelerate.utils import gather_object

    return gather_object([obj])  # Accelerate concatenates the gathered lists: one item per process


@torch.no_grad()
def average_(tensors: Iterable[torch.Tensor]) -> None:
    """Replace each tensor, in place, by its mean over the processes (as DDP does with gradients)."""
    if not is_distributed():
        return
    from accelerate.utils import reduce

    for t in tensors:
        t.copy_(reduce(t, reduction="mean"))


@torch.no_grad()
def broadcast_(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite each tensor, in place, with process ``src``'s values."""
    if not is_distributed():
        return
    from accelerate.utils import broadcast

    tensors = list(tensors)
    for t, received in zip(tensors, broadcast(tensors, from_process=src)):
        t.copy_(received)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's model inside DDP / FSDP / DeepSpeed and ``torch.compile`` wrappers."""
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model, keep_torch_compile=False)


def exclude_from_ddp_sync(model: nn.Module, names: Iterable[str]) -> None:
    """Keep DDP from broadcasting these parameters / buffers (full names in ``model``) from process 0.

    DDP re-broadcasts every buffer from process 0 before each forward pass; for buffers that accumulate
    per-process values across forward passes (gradient accumulation) that would overwrite them. Call before
    the model is wrapped (``accelerator.prepare``). Accelerate has no per-tensor option
    (``DistributedDataParallelKwargs(broadcast_buffers=False)`` would stop the broadcast of every buffer), so this
    uses DDP's own hook.
    """
    ignored = set(getattr(model, "_ddp_params_and_buffers_to_ignore", ())) | set(names)
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, sorted(ignored))
