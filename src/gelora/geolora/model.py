"""Put GeoLoRA adapters into a model, inspect them, and merge them back."""

from __future__ import annotations

import re

import torch
from torch import nn

from gelora.distributed import exclude_from_ddp_sync
from gelora.errors import GeloraError
from gelora.geolora.config import GeoLoRAConfig
from gelora.geolora.layer import GeoLoRALinear
from gelora.plan.targets import matches_suffix

CONFIG_ATTRIBUTE = "geolora_config"


def _describe_linears(linear_names: list[str]) -> str:
    suffixes = sorted({n.rsplit(".", 1)[-1] for n in linear_names})
    shown = ", ".join(linear_names[:20]) + (", ..." if len(linear_names) > 20 else "")
    return f"The model's Linear modules end in {suffixes} ({len(linear_names)} in all: {shown})."


def check_linear_layers(model: nn.Module, what: str = "GeoLoRA", fix: str = "adapt it with LoRA instead") -> None:
    """Refuse models whose projections are GPT-2's ``Conv1D`` (transposed weights): GeoLoRA adapts ``nn.Linear``."""
    from transformers.pytorch_utils import Conv1D

    if any(isinstance(m, Conv1D) for m in model.modules()):
        raise GeloraError(f"{what} adapts nn.Linear layers, and {type(model).__name__} keeps its projections in "
                          f"GPT-2's Conv1D layers; {fix}")


def find_target_modules(model: nn.Module, target_modules: list[str] | str) -> list[str]:
    """Names of the ``nn.Linear`` modules of ``model`` selected by ``target_modules``.

    A list selects modules whose name equals an entry or ends in ``"." + entry``; every entry
    must select something. A string is a regular expression that must match a whole name.
    """
    linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n]
    if isinstance(target_modules, str):
        try:
            pattern = re.compile(target_modules)
        except re.error as exc:
            raise GeloraError(f"target_modules {target_modules!r} is not a valid regular expression: {exc}.") from exc
        chosen = [n for n in linear_names if pattern.fullmatch(n)]
        if not chosen:
            raise GeloraError(
                f"target_modules regex {target_modules!r} matches no Linear module. {_describe_linears(linear_names)}"
            )
        return chosen
    unmatched = [t for t in target_modules if not any(matches_suffix(n, [t]) for n in linear_names)]
    if unmatched:
        raise GeloraError(
            f"target_modules {unmatched} match no Linear module; fix the names. {_describe_linears(linear_names)}"
        )
    return [n for n in linear_names if matches_suffix(n, target_modules)]


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def apply_geolora(model: nn.Module, config: GeoLoRAConfig) -> nn.Module:
    """Replace the target ``nn.Linear`` modules of ``model`` by :class:`GeoLoRALinear` (in place).

    All base parameters are frozen; only the adapters' ``S`` and the ``modules_to_save`` train.
    The config is stored on the model as ``model.geolora_config``.

    Returns
    -------
    The same ``model`` object.
    """
    if geolora_layers(model):
        raise GeloraError("The model already has GeoLoRA adapters; apply_geolora once per model.")
    check_linear_layers(model)
    names = find_target_modules(model, config.target_modules)
    unknown = sorted(set(config.rank_pattern) - set(names))
    if unknown:
        raise GeloraError(
            f"rank_pattern names {unknown} are not adapted modules; use full names from {names[:10]}"
            f"{' ...' if len(names) > 10 else ''}."
        )
    if config.rank_budget is not None and config.rank_budget < config.r_min * len(names):
        raise GeloraError(
            f"rank_budget={config.rank_budget} is below r_min * number of adapters = "
            f"{config.r_min} * {len(names)}; raise the budget or lower r_min."
        )
    for p in model.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(config.seed)
    for name in names:
        layer = GeoLoRALinear(
            model.get_submodule(name),
            rank=config.initial_rank(name),
            r_min=config.r_min,
            r_max=config.r_max,
            scaling=config.scaling,
            init_s=config.init_s,
            dropout=config.dropout,
            generator=generator,
        )
        _set_submodule(model, name, layer)
    # The projected gradients accumulate per process; the integrator averages them itself.
    exclude_from_ddp_sync(model, [f"{name}.{b}" for name in names for b in ("grad_K", "grad_L")])
    for suffix in config.modules_to_save:
        found = [m for n, m in model.named_modules() if n and matches_suffix(n, [suffix])]
        if not found:
            raise GeloraError(f"modules_to_save entry {suffix!r} matches no module of the model; fix the name.")
        for module in found:
            for p in module.parameters():
                p.requires_grad_(True)
    setattr(model, CONFIG_ATTRIBUTE, config)
    return model


def geolora_layers(model: nn.Module) -> dict[str, GeoLoRALinear]:
    """Every GeoLoRA adapter in ``model``, by module name.

    Parameters
    ----------
    model : torch.nn.Module
        Any model; one without adapters gives an empty dict.

    Returns
    -------
    dict of str to GeoLoRALinear
        ``{module name: layer}`` in ``model.named_modules()`` order. The names are relative to ``model``: a
        wrapped model (DDP's ``module.`` prefix) gives prefixed names.
    """
    return {n: m for n, m in model.named_modules() if isinstance(m, GeoLoRALinear)}


def geolora_config(model: nn.Module) -> GeoLoRAConfig:
    """The config :func:`apply_geolora` attached to ``model``."""
    config = getattr(model, CONFIG_ATTRIBUTE, None)
    if config is None:
        raise GeloraError("The model has no GeoLoRA adapters; call apply_geolora(model, config) first.")
    return config


def ranks(model: nn.Module) -> dict[str, int]:
    """The current rank of every GeoLoRA adapter in ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`geolora_layers`.

    Returns
    -------
    dict of str to int
        ``{module name: rank}`` (see :func:`geolora_layers` for the names). Ranks change at every geometric step
        of :class:`GeoLoRAIntegrator`, within each adapter's ``[r_min, r_max]``.
    """
    return {n: layer.r for n, layer in geolora_layers(model).items()}


def trainable_parameter_count(model: nn.Module) -> int:
    """Numbers trained at the current ranks: ``r (in + out) + r^2`` per adapter plus the
    trainable parameters outside the adapters (``modules_to_save``).

    The adapters' tensors are allocated for ``r_max``; only the leading ``r`` columns of ``U``, ``V`` and the
    leading ``r x r`` block of ``S`` are in use, so this is smaller than summing ``p.numel()``.

    Parameters
    ----------
    model : torch.nn.Module
        A model; without adapters, the count of its parameters with ``requires_grad``.

    Returns
    -------
    int
    """
    adapters = geolora_layers(model)
    adapter_params = {id(p) for layer in adapters.values() for p in layer.parameters()}
    others = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in adapter_params)
    return others + sum(layer.parameter_count() for layer in adapters.values())


@torch.no_grad()
def merge(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight, ``W0 + s V S U^T``, leaving plain ``nn.Linear`` modules.

    Works in place, without gradients: each adapter is replaced by its base layer, whose weight gets the update at
    the current rank (in the base weight's dtype), and ``model.geolora_config`` is removed. The merged base layers
    stay frozen; ``modules_to_save`` keep ``requires_grad``.

    Parameters
    ----------
    model : torch.nn.Module
        A model with GeoLoRA adapters (one without is returned unchanged).

    Returns
    -------
    torch.nn.Module
        The same ``model`` object, computing what the adapted model computed (dropout aside).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from gelora.geolora import GeoLoRAConfig, apply_geolora, merge
    >>> model = apply_geolora(nn.Sequential(nn.Linear(8, 8)), GeoLoRAConfig(["0"], r_init=2, init_s=0.5))
    >>> x = torch.randn(3, 8)
    >>> y = model(x)
    >>> merged = merge(model)
    >>> type(merged[0]).__name__, torch.allclose(merged(x), y, atol=1e-6)
    ('Linear', True)
    """
    for name, layer in geolora_layers(model).items():
        base = layer.base
        base.weight += layer.delta_weight().to(base.weight.dtype)
        _set_submodule(model, name, base)
    if hasattr(model, CONFIG_ATTRIBUTE):
        delattr(model, CONFIG_ATTRIBUTE)
    return model
