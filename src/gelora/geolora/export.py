"""Save and load GeoLoRA adapters, and export them as standard PEFT LoRA adapters."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gelora.errors import GeloraError
from gelora.io import atomic_write, atomic_write_dir, atomic_write_json
from gelora.geolora.config import GeoLoRAConfig
from gelora.geolora.model import CONFIG_ATTRIBUTE, _set_submodule, apply_geolora, geolora_config, geolora_layers, ranks

CONFIG_FILE = "geolora_config.json"
WEIGHTS_FILE = "geolora_adapter.safetensors"
RANKS_FILE = "geolora_ranks.json"


def _adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Everything a GeoLoRA checkpoint needs: the factors and ranks of every adapter, and the
    trainable parameters outside the adapters (``modules_to_save``)."""
    adapter_keys = {f"{name}.{key}" for name in geolora_layers(model) for key in ("lora_U", "lora_S", "lora_V", "rank")}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    return {
        key: value.detach().contiguous().cpu()
        for key, value in model.state_dict().items()
        if key in adapter_keys or key in trainable
    }


def save_geolora(model: nn.Module, out_dir: str | os.PathLike) -> Path:
    """Write ``geolora_config.json``, ``geolora_adapter.safetensors`` and ``geolora_ranks.json`` to ``out_dir``.

    The weights file holds each adapter's ``lora_U``, ``lora_S``, ``lora_V`` (allocated for ``r_max``) and
    ``rank``, and the trainable parameters outside the adapters (``modules_to_save``); not the base weights.
    :func:`load_geolora` reads it back into the same base model; :func:`export_to_peft` writes a PEFT adapter
    instead.

    Parameters
    ----------
    model : torch.nn.Module
        A model prepared by :func:`apply_geolora`.
    out_dir : str or os.PathLike
        Created if missing; other files in it are left alone, these three are replaced (each atomically).

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    GeloraError
        ``model`` has no GeoLoRA adapters.
    """
    out_dir = Path(out_dir)
    geolora_config(model).save(out_dir / CONFIG_FILE)
    state = _adapter_state(model)
    atomic_write(out_dir / WEIGHTS_FILE, lambda tmp: save_file(state, tmp))
    atomic_write_json(out_dir / RANKS_FILE, ranks(model))
    return out_dir


def load_geolora(base_model: nn.Module, adapter_dir: str | os.PathLike) -> nn.Module:
    """Apply the saved config to ``base_model`` (the same base as at training) and load the adapters.

    Parameters
    ----------
    base_model : torch.nn.Module
        The base model the adapters were trained on, without adapters; modified in place.
    adapter_dir : str or os.PathLike
        A folder written by :func:`save_geolora`.

    Returns
    -------
    torch.nn.Module
        ``base_model`` itself, with the saved adapters at their saved ranks and the saved ``modules_to_save``.

    Raises
    ------
    GeloraError
        The folder lacks ``geolora_config.json`` or ``geolora_adapter.safetensors``; the config is not a GeoLoRA
        config; ``base_model`` already has adapters or lacks a target module; or the saved tensors are not the
        ones this model's adapters need, by name or by shape (another base).
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / CONFIG_FILE).is_file() or not (adapter_dir / WEIGHTS_FILE).is_file():
        raise GeloraError(f"{adapter_dir} holds no GeoLoRA adapter ({CONFIG_FILE} and {WEIGHTS_FILE}); save one with save_geolora.")
    model = apply_geolora(base_model, GeoLoRAConfig.load(adapter_dir / CONFIG_FILE))
    state = load_file(adapter_dir / WEIGHTS_FILE)
    expected = set(_adapter_state(model))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise GeloraError(
            f"GeoLoRA adapter in {adapter_dir} does not fit this model (missing {missing[:5]}, unexpected "
            f"{extra[:5]}); load it into the base model it was trained on."
        )
    own = model.state_dict()
    resized = [name for name, tensor in state.items() if tensor.shape != own[name].shape]
    if resized:
        name = resized[0]
        raise GeloraError(
            f"GeoLoRA adapter in {adapter_dir} was trained on layers of other sizes ({len(resized)} tensor(s), e.g. "
            f"{name}: saved {tuple(state[name].shape)}, this model {tuple(own[name].shape)}); load it into the base "
            "model it was trained on."
        )
    model.load_state_dict(state, strict=False)
    return model


def _base_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every adapter replaced by its frozen base layer."""
    base = copy.deepcopy(model)
    for name, layer in geolora_layers(base).items():
        _set_submodule(base, name, layer.base)
    delattr(base, CONFIG_ATTRIBUTE)
    return base


@torch.no_grad()
def export_to_peft(model: nn.Module, out_dir: str | os.PathLike, task_type: str | None = None) -> Path:
    """Save the adapters of ``model`` as a PEFT LoRA adapter that ``PeftModel.from_pretrained`` opens.

    Each adapter becomes ``lora_A = U^T`` and ``lora_B = s V S`` at its current rank. The
    per-module rank goes into ``rank_pattern`` and ``alpha_pattern`` gets the same value, so
    PEFT's scaling ``alpha / r`` is 1 and ``s`` stays folded into ``lora_B``. Pattern keys are
    the escaped full module names; PEFT matches them as ``(.*\\.)?key$``, so each hits one module.
    ``modules_to_save`` are exported as PEFT ``modules_to_save``. ``model`` is not changed (PEFT wraps a copy).

    Parameters
    ----------
    model : torch.nn.Module
        A model prepared by :func:`apply_geolora`.
    out_dir : str or os.PathLike
        Created if missing. Receives ``adapter_config.json``, ``adapter_model.safetensors`` and PEFT's
        ``README.md``, plus ``geolora_ranks.json``; each file lands whole, other files in it are left alone.
    task_type : str, optional
        PEFT's task type (e.g. ``"SEQ_CLS"``, ``"CAUSAL_LM"``), written to ``adapter_config.json`` as for a PEFT
        LoRA run, so ``AutoPeftModelFor...`` classes open the adapter too. Default: none.

    Returns
    -------
    pathlib.Path
        ``out_dir``, for ``PeftModel.from_pretrained(base, out_dir)``.

    Raises
    ------
    GeloraError
        ``model`` has no GeoLoRA adapters, or the installed peft does not give a module its rank with scaling 1.
    """
    from peft import LoraConfig, get_peft_model

    config = geolora_config(model)
    layers = geolora_layers(model)
    current = ranks(model)
    patterns = {re.escape(name): r for name, r in current.items()}
    top = max(current.values())
    lora_config = LoraConfig(
        r=top,
        lora_alpha=top,
        target_modules=list(layers),
        rank_pattern=patterns,
        alpha_pattern=dict(patterns),
        lora_dropout=config.dropout,
        bias="none",
        modules_to_save=list(config.modules_to_save) or None,
        task_type=task_type,
    )
    peft_model = get_peft_model(_base_copy(model), lora_config)
    inner = peft_model.base_model.model
    for name, layer in layers.items():
        target = inner.get_submodule(name)
        A, B = layer.lora_factors()
        lora_A, lora_B = target.lora_A["default"].weight, target.lora_B["default"].weight
        if lora_A.shape != A.shape or target.scaling["default"] != 1.0:
            raise GeloraError(f"PEFT did not give {name!r} rank {layer.r} and scaling 1; the installed peft is incompatible.")
        lora_A.copy_(A)
        lora_B.copy_(B)
    def write(folder: Path) -> None:
        peft_model.save_pretrained(folder)
        atomic_write_json(folder / RANKS_FILE, current)

    return atomic_write_dir(out_dir, write)
