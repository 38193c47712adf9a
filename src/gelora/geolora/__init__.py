"""GeoLoRA (Schotthöfer et al. 2024, arXiv 2410.18720): rank-adaptive adapters trained by geometric integration."""

from gelora.geolora.callback import GeoLoRACallback
from gelora.geolora.config import GeoLoRAConfig
from gelora.geolora.export import export_to_peft, load_geolora, save_geolora
from gelora.geolora.integrator import GeoLoRAIntegrator
from gelora.geolora.layer import GeoLoRALinear
from gelora.geolora.model import (
    apply_geolora,
    find_target_modules,
    geolora_layers,
    merge,
    ranks,
    trainable_parameter_count,
)

__all__ = [
    "GeoLoRACallback",
    "GeoLoRAConfig",
    "GeoLoRAIntegrator",
    "GeoLoRALinear",
    "apply_geolora",
    "export_to_peft",
    "find_target_modules",
    "geolora_layers",
    "load_geolora",
    "merge",
    "ranks",
    "save_geolora",
    "trainable_parameter_count",
]
