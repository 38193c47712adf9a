"""The GeoLoRA training step: basis augmentation, coefficient step and one truncation per layer."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from gelora.distributed import average_, broadcast_, unwrap_model
from gelora.errors import GeloraError
from gelora.io import atomic_write_json
from gelora.geolora.config import GeoLoRAConfig
from gelora.geolora.layer import GeoLoRALinear
from gelora.geolora.model import geolora_config, geolora_layers, ranks, trainable_parameter_count
from gelora.geolora.truncation import budget_ranks, tolerance_rank


def _unwrap_optimizer(optimizer):
    """The ``torch.optim.Optimizer`` inside wrappers such as accelerate's ``AcceleratedOptimizer``."""
    while not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    return optimizer


class GeoLoRAIntegrator:
    """Drives the geometric integration of all GeoLoRA adapters of a model.

    Every ``config.augment_every``-th optimizer step is a *geometric step*: for each adapter,
    the bases are augmented with the projected gradients, ``S`` takes a plain gradient step of
    size ``lr`` inside the augmented ``2r x 2r`` coefficient matrix, and the result is truncated
    once (per-layer tolerance ``tau``, then the optional global ``rank_budget``). On these steps
    the optimizer does not touch ``S`` (its gradient is set to ``None`` around the optimizer
    step); on the other steps ("coefficient steps") the optimizer updates ``S`` in fixed bases.
    Whenever an adapter's basis changes, the optimizer state of its ``S`` is dropped, since the
    Adam moments refer to coordinates that no longer exist.

    Parameters
    ----------
    model : torch.nn.Module
        A model prepared by :func:`apply_geolora`.
    optimizer : torch.optim.Optimizer, optional
        The optimizer holding the adapters' ``S`` (and any other trainable parameters), or a wrapper of
        one (Accelerate's ``AcceleratedOptimizer``). May be ``None`` at construction and set later (the
        Trainer callback does this).
    config : GeoLoRAConfig, optional
        Defaults to the config attached by :func:`apply_geolora`.

    Raises
    ------
    GeloraError
        ``model`` has no GeoLoRA adapters.

    Notes
    -----
    Use ``loss.backward(); integrator.step()`` in a plain loop (``step`` calls the optimizer
    and zeroes the gradients), or :class:`GeoLoRACallback` with ``transformers.Trainer``.

    Under data parallelism (DDP via Accelerate or torchrun) the model may be passed wrapped. DDP
    averages ``S``'s gradient; the geometric step averages the projected basis gradients itself
    and then broadcasts process 0's factors and ranks, so every process keeps identical ``U``,
    ``S``, ``V`` and ranks whatever the numerical library does with ties and signs.
    """

    def __init__(self, model: nn.Module, optimizer=None, config: GeoLoRAConfig | None = None) -> None:
        self.model = unwrap_model(model)
        self.config = config or geolora_config(self.model)
        self.layers: dict[str, GeoLoRALinear] = geolora_layers(self.model)
        if not self.layers:
            raise GeloraError("The model has no GeoLoRA adapters; call apply_geolora(model, config) first.")
        self.optimizer = optimizer
        self.step_count = 0
        self.rank_history: list[dict] = []
        self._pending_S_grads: dict[str, torch.Tensor] | None = None
        self._record()
        self._set_collection(self._is_geometric_step())

    # --- public API -------------------------------------------------------------------------
    def step(self) -> None:
        """Optimizer step plus GeoLoRA update; call after ``loss.backward()``. Zeroes the gradients.

        The same as :meth:`before_optimizer_step`, ``optimizer.step()``, :meth:`after_optimizer_step` and
        ``optimizer.zero_grad(set_to_none=True)``; call those yourself to clip gradients first or step a scheduler
        after.

        Raises
        ------
        GeloraError
            No optimizer was given, or (on a geometric step with ``geometric_lr=None``) an adapter's ``S`` is not
            in the optimizer.
        """
        optimizer = self._require_optimizer()
        self.before_optimizer_step()
        optimizer.step()
        self.after_optimizer_step()
        optimizer.zero_grad(set_to_none=True)

    def before_optimizer_step(self) -> None:
        """On a geometric step, take ``S``'s gradients away from the optimizer (they are used in
        the augmented coefficient matrix instead).

        Call after ``loss.backward()`` and any clipping (pass the clipping factor to :meth:`scale_basis_gradients`)
        and right before ``optimizer.step()``; on a coefficient step it does nothing. The gradients are kept until
        :meth:`after_optimizer_step`.
        """
        if not self._is_geometric_step():
            return
        self._pending_S_grads = {}
        for name, layer in self.layers.items():
            grad = layer.lora_S.grad
            self._pending_S_grads[name] = torch.zeros_like(layer.lora_S) if grad is None else grad
            layer.lora_S.grad = None

    def after_optimizer_step(self) -> None:
        """Run the geometric step when due, then prepare the adapters for the next backward pass.

        Call right after ``optimizer.step()``. A geometric step augments the bases, steps ``S`` by
        ``geometric_lr`` (default: the learning rate of the optimizer's group holding ``S``, so step a scheduler
        after this call), truncates once per adapter, drops the optimizer state of every ``S`` (its coordinates
        changed) and appends to ``rank_history``. Every call counts one step (``step_count``) and clears the
        projected basis gradients.

        Raises
        ------
        GeloraError
            On a geometric step: :meth:`before_optimizer_step` was not called first, or the step size is taken
            from an optimizer that is missing or does not hold an adapter's ``S``.
        """
        if self._is_geometric_step():
            if self._pending_S_grads is None:
                raise GeloraError(
                    "GeoLoRAIntegrator.after_optimizer_step ran without before_optimizer_step; call "
                    "integrator.step(), or both hooks around optimizer.step()."
                )
            self._geometric_step(self._pending_S_grads)
            self._pending_S_grads = None
        for layer in self.layers.values():
            layer.zero_basis_gradients()
        self.step_count += 1
        self._set_collection(self._is_geometric_step())

    def scale_basis_gradients(self, factor: float) -> None:
        """Scale the projected basis gradients of this step, e.g. by the gradient-clipping factor.

        The geometric step builds all blocks of the augmented ``S`` from one gradient; when clipping has
        scaled ``S``'s gradient, the same factor must reach the basis directions, or the step mixes a
        clipped and an unclipped gradient.
        """
        if factor != 1.0:
            for layer in self.layers.values():
                layer.grad_K.mul_(factor)
                layer.grad_L.mul_(factor)

    def ranks(self) -> dict[str, int]:
        """``{module name: current rank}``."""
        return ranks(self.model)

    def trainable_parameter_count(self) -> int:
        """Trained numbers at the current ranks (adapters plus ``modules_to_save``)."""
        return trainable_parameter_count(self.model)

    def state_dict(self) -> dict:
        """Step counter and rank history, for exact resume (the factors live in the model's state)."""
        return {"step_count": self.step_count, "rank_history": self.rank_history}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        self.rank_history = list(state["rank_history"])
        self._set_collection(self._is_geometric_step())

    def save_rank_history(self, path: str | os.PathLike) -> Path:
        """Write ``rank_history`` (a list of ``{"step", "ranks", "total_rank", "parameters"}``) as JSON."""
        return atomic_write_json(path, self.rank_history)

    # --- internals --------------------------------------------------------------------------
    def _is_geometric_step(self) -> bool:
        return (self.step_count + 1) % self.config.augment_every == 0

    def _set_collection(self, enabled: bool) -> None:
        # The projected gradients cost two extra matmuls per adapter; skip them on coefficient steps.
        for layer in self.layers.values():
            layer.collect_basis_gradients = enabled

    def _require_optimizer(self):
        if self.optimizer is None:
            raise GeloraError("GeoLoRAIntegrator has no optimizer; pass one: GeoLoRAIntegrator(model, optimizer).")
        return _unwrap_optimizer(self.optimizer)

    def _learning_rate(self, name: str, layer: GeoLoRALinear) -> float:
        if self.config.geometric_lr is not None:
            return self.config.geometric_lr
        optimizer = self._require_optimizer()
        for group in optimizer.param_groups:
            if any(p is layer.lora_S for p in group["params"]):
                return float(group["lr"])
        raise GeloraError(
            f"The S of adapter {name!r} is not in the optimizer. Build the optimizer after apply_geolora from "
            "[p for p in model.parameters() if p.requires_grad], or set GeoLoRAConfig.geometric_lr."
        )

    @torch.no_grad()
    def _geometric_step(self, S_grads: dict[str, torch.Tensor]) -> None:
        config = self.config
        average_(t for layer in self.layers.values() for t in (layer.grad_K, layer.grad_L))
        augmented = {
            name: layer.augment(S_grads[name], self._learning_rate(name, layer)) for name, layer in self.layers.items()
        }
        new_ranks = {
            name: tolerance_rank(aug.sigma, config.tau, layer.r_min, min(layer.r_max, aug.sigma.numel()))
            for (name, aug), layer in zip(augmented.items(), self.layers.values())
        }
        if config.rank_budget is not None:
            sigmas = {name: aug.sigma for name, aug in augmented.items()}
            new_ranks = budget_ranks(sigmas, new_ranks, config.rank_budget, config.r_min)
        optimizer = _unwrap_optimizer(self.optimizer) if self.optimizer is not None else None
        for name, layer in self.layers.items():
            layer.set_factors(augmented[name], new_ranks[name])
            if optimizer is not None:
                optimizer.state.pop(layer.lora_S, None)
        self._agree_across_processes()
        self._record()

    def _agree_across_processes(self) -> None:
        """Make every process hold process 0's factors and ranks (a no-op in a single process)."""
        layers = self.layers.values()
        broadcast_(t for layer in layers for t in (layer.lora_U, layer.lora_V, layer.lora_S, layer.rank))
        for layer in layers:
            layer._set_rank(int(layer.rank))

    def _record(self) -> None:
        current = self.ranks()
        self.rank_history.append(
            {
                "step": self.step_count,
                "ranks": current,
                "total_rank": sum(current.values()),
                "parameters": self.trainable_parameter_count(),
            }
        )
