"""Find the transformer blocks of a model and the linear modules in each that LoRA adapts.

Blocks are the ``nn.ModuleList`` of identical layers whose length is ``config.num_hidden_layers`` (BERT's
``encoder.layer``, GPT-2's ``h``, Llama's ``layers`` ...), so block i sits between hidden-state boundaries i and i + 1.
By default every linear module inside a block is a target: attention q/k/v/o and the MLP in/out projections for the
supported families (GPT-2's fused ``Conv1D`` layers included; PEFT handles them with ``fan_in_fan_out``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from gelora.errors import GeloraError


def _conv1d_type():
    from transformers.pytorch_utils import Conv1D

    return Conv1D


def is_linear(module: nn.Module) -> bool:
    """A layer LoRA can adapt as a matrix: ``nn.Linear`` or Transformers' ``Conv1D`` (GPT-2)."""
    return isinstance(module, (nn.Linear, _conv1d_type()))


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of a linear layer; ``Conv1D`` stores its weight transposed."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    n_in, n_out = module.weight.shape
    return int(n_in), int(n_out)


def linear_module_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if is_linear(m)]


def _num_layers(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "num_hidden_layers", None) if config is not None else None


def find_blocks(model: nn.Module) -> tuple[str, list[nn.Module]]:
    """The model's stack of transformer blocks: ``(path, blocks)``, e.g. ``("encoder.layer", [...])``.

    Picks the ``nn.ModuleList`` of same-class modules with ``config.num_hidden_layers`` entries (or, without a config,
    the longest such list) that holds linear layers.
    """
    expected = _num_layers(model)
    candidates = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.ModuleList) or len(m) == 0:
            continue
        if len({type(b) for b in m}) != 1 or not any(is_linear(x) for x in m[0].modules()):
            continue
        if expected is None or len(m) == expected:
            candidates.append((name, list(m)))
    if not candidates:
        linear = linear_module_names(model)
        found = ", ".join(linear[:20]) + (" ..." if len(linear) > 20 else "") if linear else "none"
        raise GeloraError(
            f"could not find the transformer blocks of {type(model).__name__} (a list of {expected or 'N'} identical "
            f"layers holding linear modules); its linear modules: {found}"
        )
    return max(candidates, key=lambda c: len(c[1]))


def matches_suffix(name: str, suffixes: Sequence[str]) -> bool:
    """True when ``name`` is one of ``suffixes`` or ends in ``"." + suffix``: PEFT's rule for ``target_modules``."""
    return any(name == s or name.endswith("." + s) for s in suffixes)


def find_block_targets(model: nn.Module, target_modules: Sequence[str] | None = None) -> list[list[str]]:
    """Full names of the target linear modules of each block, in block order.

    Parameters
    ----------
    model : torch.nn.Module
        A Transformers model (bare backbone or with a head).
    target_modules : sequence of str, optional
        Suffixes of module names inside a block (``"query"``, ``"self_attn.q_proj"``, ``"c_attn"``); default: every
        linear module of the block.

    Raises
    ------
    GeloraError
        When no blocks are found, or a suffix matches nothing (the message lists the blocks' linear modules).
    """
    path, blocks = find_blocks(model)
    prefix = f"{path}." if path else ""
    targets = []
    for i, block in enumerate(blocks):
        names = [n for n, m in block.named_modules() if n and is_linear(m)]
        if target_modules:
            names = [n for n in names if matches_suffix(n, target_modules)]
        targets.append([f"{prefix}{i}.{n}" for n in names])
    if target_modules:
        available = [n for n, m in blocks[0].named_modules() if n and is_linear(m)]
        unmatched = [s for s in target_modules if not any(matches_suffix(n, [s]) for n in available)]
        if unmatched or not any(targets):
            raise GeloraError(
                f"target module(s) {', '.join(unmatched or target_modules)} match no linear module in the blocks of "
                f"{type(model).__name__}; available in each block ({prefix}<i>.*): {', '.join(available)}"
            )
    return targets


def resolve_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module | None]:
    """Each name's module in ``model``, matched as PEFT matches ``target_modules``: the full name, or a suffix after a
    dot (so a plan made on the bare backbone, ``encoder.layer.0...``, finds ``bert.encoder.layer.0...`` in a model
    with a head). None where nothing, or more than one module, matches."""
    modules = dict(model.named_modules())
    found = {}
    for name in names:
        hits = [modules[name]] if name in modules else [m for n, m in modules.items() if matches_suffix(n, [name])]
        found[name] = hits[0] if len(hits) == 1 else None
    return found
