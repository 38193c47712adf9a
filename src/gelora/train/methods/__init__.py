"""Fine-tuning methods: one module each, registered here by the name ``--method`` gives.

A new method is a ``Method`` subclass in its own module and one line in ``METHODS``.
"""

from __future__ import annotations

from gelora.errors import GeloraError
from gelora.train.methods.adalora import AdaLoRA
from gelora.train.methods.base import BuildContext, Method
from gelora.train.methods.eva import EVA
from gelora.train.methods.full import Full
from gelora.train.methods.gelora import GeLoRA, plan_from_profile, timed_profile
from gelora.train.methods.geolora import GeLoRAGeoLoRA, GeoLoRA
from gelora.train.methods.lora import PLAN_FILE, LoRA

METHODS: dict[str, type[Method]] = {
    m.name: m for m in (GeLoRA, LoRA, AdaLoRA, EVA, Full, GeoLoRA, GeLoRAGeoLoRA)
}


def method_class(name: str) -> type[Method]:
    """The method ``--method`` names (one clear error for an unknown name)."""
    if name not in METHODS:
        raise GeloraError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def planned_methods() -> tuple[str, ...]:
    """Methods trained from a GeLoRA plan (the bench profiles and plans once per task for them)."""
    return tuple(name for name, m in METHODS.items() if m.uses_plan)


__all__ = ["METHODS", "PLAN_FILE", "BuildContext", "Method", "method_class", "plan_from_profile", "planned_methods",
           "timed_profile"]
